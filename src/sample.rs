//! Sample: open one input, refuse what is not a regular file, and read it ONCE into memory up to a cap.
//!
//! No mmap: a file truncated while mapped crashes the process. A FIFO or device is refused without blocking:
//! the file is opened non-blocking and checked with `fstat` on the handle itself (no race between a `stat`
//! and the `open`). A file over the cap is not read whole: the caller gets the bytes read so far and the
//! open reader, and streams the digests.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Default cap on the bytes read into memory: 256 MiB.
pub const DEFAULT_MAX_SIZE: u64 = 256 * 1024 * 1024;

/// Where a sample comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A path on disk.
    Path(PathBuf),
    /// Standard input (`-`).
    Stdin,
}

impl Input {
    /// The input named by a command-line argument (`-` is standard input).
    pub fn from_arg(arg: &std::ffi::OsStr) -> Input {
        if arg == "-" { Input::Stdin } else { Input::Path(PathBuf::from(arg)) }
    }

    /// The name to show for this input (lossy for a non-UTF-8 path).
    pub fn display_name(&self) -> String {
        match self {
            Input::Stdin => "-".to_string(),
            Input::Path(p) => p.to_string_lossy().into_owned(),
        }
    }

    /// The raw bytes of a path that is not valid UTF-8.
    pub fn raw_path_bytes(&self) -> Option<Vec<u8>> {
        match self {
            Input::Path(p) if p.to_str().is_none() => Some(path_bytes(p)),
            _ => None,
        }
    }
}

#[cfg(unix)]
fn path_bytes(p: &Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    p.as_os_str().as_bytes().to_vec()
}

#[cfg(not(unix))]
fn path_bytes(p: &Path) -> Vec<u8> {
    p.to_string_lossy().as_bytes().to_vec()
}

/// Why a sample could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such file.
    #[error("no such file or directory")]
    NotFound,
    /// Permission denied.
    #[error("permission denied")]
    PermissionDenied,
    /// A directory was given.
    #[error("is a directory (use `filerep scan` for directories)")]
    IsDirectory,
    /// A FIFO, socket or device.
    #[error("not a regular file ({0}); refusing to read it")]
    NotRegular(&'static str),
    /// Any other I/O error.
    #[error("{0}")]
    Io(#[source] io::Error),
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::NotFound => Error::NotFound,
            io::ErrorKind::PermissionDenied => Error::PermissionDenied,
            io::ErrorKind::IsADirectory => Error::IsDirectory,
            _ => Error::Io(e),
        }
    }
}

/// The bytes of a sample.
pub enum Content {
    /// The whole file, read once.
    Whole(Vec<u8>),
    /// Over the cap: the first bytes read and the reader positioned after them.
    OverCap {
        /// Bytes already read (enough to tell the format; up to the cap plus one byte for a stream of
        /// unknown length).
        head: Vec<u8>,
        /// The rest of the input.
        rest: Box<dyn Read + Send>,
    },
}

/// Bytes read from a file known to be over the cap before its digests are streamed.
const HEAD: usize = 64 * 1024;

/// Open and read an input, keeping at most `max_size` bytes in memory.
pub fn load(input: &Input, max_size: u64) -> Result<Content, Error> {
    match input {
        Input::Stdin => read_capped(Box::new(io::stdin()), max_size, None),
        Input::Path(p) => load_file(open_regular(p)?, max_size),
    }
}

/// Bytes that tell an executable from other files (`MZ`, `\x7fELF`, the Mach-O magics).
pub const MAGIC_BYTES: usize = 8;

/// Open a file found by a directory walk and read it only when its first bytes are an executable's
/// (`MZ`, ELF, Mach-O), or whatever it is when `all_files`: `Ok(None)` means "not an executable" after
/// reading at most [`MAGIC_BYTES`] bytes.
pub fn load_if_executable(path: &Path, max_size: u64, all_files: bool) -> Result<Option<Content>, Error> {
    let mut file = open_regular(path)?;
    if !all_files {
        let mut head = [0u8; MAGIC_BYTES];
        let mut n = 0;
        while n < head.len() {
            match file.read(&mut head[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
        }
        if !crate::analysis::is_executable_magic(&head[..n]) {
            return Ok(None);
        }
        use std::io::Seek;
        file.seek(io::SeekFrom::Start(0))?;
    }
    load_file(file, max_size).map(Some)
}

fn load_file(mut file: File, max_size: u64) -> Result<Content, Error> {
    let len = file.metadata().map(|m| m.len()).ok();
    if len.is_some_and(|l| l > max_size) {
        // Known to be over the cap: read just enough to tell the format, and stream the rest.
        let mut head = Vec::with_capacity(HEAD);
        (&mut file).take(HEAD as u64).read_to_end(&mut head)?;
        return Ok(Content::OverCap { head, rest: Box::new(file) });
    }
    read_capped(Box::new(file), max_size, len)
}

fn read_capped(reader: Box<dyn Read + Send>, max_size: u64, len_hint: Option<u64>) -> Result<Content, Error> {
    let cap = usize::try_from(max_size).unwrap_or(usize::MAX);
    // Trust the size only as a capacity hint (the file can change while we read it).
    let initial = len_hint.map(|l| l.min(max_size) as usize).unwrap_or(0).min(cap).saturating_add(1);
    let mut buf = Vec::with_capacity(initial.min(64 * 1024 * 1024));
    let mut limited = reader.take(max_size.saturating_add(1));
    loop {
        match limited.read_to_end(&mut buf) {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
    }
    if buf.len() as u64 > max_size {
        Ok(Content::OverCap { head: buf, rest: Box::new(limited.into_inner()) })
    } else {
        Ok(Content::Whole(buf))
    }
}

/// Open a path for reading, refusing anything but a regular file without blocking on a FIFO.
fn open_regular(path: &Path) -> Result<File, Error> {
    let file = open_nonblocking(path)?;
    let meta = file.metadata()?;
    let ft = meta.file_type();
    if ft.is_dir() {
        return Err(Error::IsDirectory);
    }
    if !ft.is_file() {
        return Err(Error::NotRegular(kind_name(&ft)));
    }
    Ok(file)
}

#[cfg(unix)]
fn open_nonblocking(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer. It has no effect on
    // reads from a regular file.
    std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> io::Result<File> {
    File::open(path)
}

#[cfg(unix)]
fn kind_name(ft: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_char_device() {
        "a character device"
    } else {
        "not a regular file"
    }
}

#[cfg(not(unix))]
fn kind_name(_: &std::fs::FileType) -> &'static str {
    "not a regular file"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_and_over_the_cap() {
        let data = vec![7u8; 100];
        match read_capped(Box::new(io::Cursor::new(data.clone())), 100, Some(100)).unwrap() {
            Content::Whole(b) => assert_eq!(b, data),
            Content::OverCap { .. } => panic!("100 bytes fit a cap of 100"),
        }
        match read_capped(Box::new(io::Cursor::new(data)), 99, Some(100)).unwrap() {
            Content::OverCap { head, mut rest } => {
                assert_eq!(head.len(), 100);
                let mut tail = Vec::new();
                rest.read_to_end(&mut tail).unwrap();
                assert!(tail.is_empty());
            }
            Content::Whole(_) => panic!("100 bytes exceed a cap of 99"),
        }
    }

    #[cfg(unix)]
    #[test]
    fn refuses_devices_and_directories() {
        assert!(matches!(load(&Input::Path("/dev/null".into()), 10), Err(Error::NotRegular("a character device"))));
        assert!(matches!(load(&Input::Path("/".into()), 10), Err(Error::IsDirectory)));
        assert!(matches!(load(&Input::Path("/no/such/file".into()), 10), Err(Error::NotFound)));
    }
}
