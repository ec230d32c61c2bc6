//! A strict, allocation-free DER reader for the parts of a signature whose exact bytes matter.
//!
//! A signature is verified over the bytes that were signed, not over a re-encoding of them: the signed
//! attributes, a certificate's `tbsCertificate`, the `SpcIndirectDataContent` and a timestamp's `TSTInfo` are
//! all hashed as they stand in the file. The typed parsers of `x509-cert` give meaning to certificates; this
//! reader walks the CMS envelope around them and hands out slices of the original input. It accepts definite
//! lengths only (DER), low tag numbers only, and never reads past the slice it was given.

use const_oid::ObjectIdentifier;

/// Why a structure could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DerError {
    /// The input ends inside a tag, length or value.
    #[error("truncated DER")]
    Truncated,
    /// Indefinite lengths (BER), non-minimal lengths, lengths over 4 bytes, or high tag numbers.
    #[error("not DER: {0}")]
    NotDer(&'static str),
    /// A different element was expected here.
    #[error("expected {expected}, found tag 0x{found:02x}")]
    Unexpected {
        /// What the structure needed.
        expected: &'static str,
        /// The tag found.
        found: u8,
    },
    /// Elements left over where the structure should have ended.
    #[error("trailing data in {0}")]
    Trailing(&'static str),
}

/// Tags used by the structures read here.
pub mod tag {
    /// INTEGER.
    pub const INTEGER: u8 = 0x02;
    /// BIT STRING.
    pub const BIT_STRING: u8 = 0x03;
    /// OCTET STRING.
    pub const OCTET_STRING: u8 = 0x04;
    /// NULL.
    pub const NULL: u8 = 0x05;
    /// OBJECT IDENTIFIER.
    pub const OID: u8 = 0x06;
    /// UTCTime.
    pub const UTC_TIME: u8 = 0x17;
    /// GeneralizedTime.
    pub const GENERALIZED_TIME: u8 = 0x18;
    /// SEQUENCE (constructed).
    pub const SEQUENCE: u8 = 0x30;
    /// SET (constructed).
    pub const SET: u8 = 0x31;
    /// `[0]` constructed, context-specific.
    pub const CTX0: u8 = 0xa0;
    /// `[1]` constructed, context-specific.
    pub const CTX1: u8 = 0xa1;
}

/// One element: its tag, its value, and the whole encoding (header and value).
#[derive(Debug, Clone, Copy)]
pub struct Tlv<'a> {
    /// The identifier octet.
    pub tag: u8,
    /// The contents octets.
    pub value: &'a [u8],
    /// Identifier, length and contents octets, as they stand in the input.
    pub raw: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// The children of a constructed element.
    pub fn children(&self) -> Reader<'a> {
        Reader::new(self.value)
    }

    /// Require a given tag.
    pub fn expect(self, tag: u8, what: &'static str) -> Result<Tlv<'a>, DerError> {
        if self.tag == tag { Ok(self) } else { Err(DerError::Unexpected { expected: what, found: self.tag }) }
    }

    /// This element as an object identifier.
    pub fn oid(&self) -> Result<ObjectIdentifier, DerError> {
        if self.tag != tag::OID {
            return Err(DerError::Unexpected { expected: "an object identifier", found: self.tag });
        }
        ObjectIdentifier::from_bytes(self.value).map_err(|_| DerError::NotDer("bad object identifier"))
    }

    /// Whether this element is the object identifier `oid` (compared on the encoded arcs).
    pub fn is_oid(&self, oid: &ObjectIdentifier) -> bool {
        self.tag == tag::OID && self.value == oid.as_bytes()
    }
}

/// Reads consecutive elements from a slice.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Read elements from `input`.
    pub fn new(input: &'a [u8]) -> Reader<'a> {
        Reader { rest: input }
    }

    /// Nothing left.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// What has not been read.
    pub fn remaining(&self) -> &'a [u8] {
        self.rest
    }

    /// The tag of the next element, without reading it.
    pub fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// Read the next element.
    pub fn next_tlv(&mut self) -> Result<Tlv<'a>, DerError> {
        let (tlv, rest) = read_tlv(self.rest)?;
        self.rest = rest;
        Ok(tlv)
    }

    /// Read the next element and require its tag.
    pub fn expect(&mut self, tag: u8, what: &'static str) -> Result<Tlv<'a>, DerError> {
        self.next_tlv()?.expect(tag, what)
    }

    /// Read the next element if it has this tag.
    pub fn optional(&mut self, tag: u8) -> Result<Option<Tlv<'a>>, DerError> {
        if self.peek_tag() == Some(tag) { self.next_tlv().map(Some) } else { Ok(None) }
    }

    /// Require that everything was read.
    pub fn finish(&self, what: &'static str) -> Result<(), DerError> {
        if self.rest.is_empty() { Ok(()) } else { Err(DerError::Trailing(what)) }
    }
}

/// Read one element from the start of `input`; returns it and what follows it.
pub fn read_tlv(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), DerError> {
    let (&tag, after_tag) = input.split_first().ok_or(DerError::Truncated)?;
    if tag & 0x1f == 0x1f {
        return Err(DerError::NotDer("high tag number"));
    }
    let (&first, mut after_len) = after_tag.split_first().ok_or(DerError::Truncated)?;
    let len = if first < 0x80 {
        usize::from(first)
    } else if first == 0x80 {
        return Err(DerError::NotDer("indefinite length"));
    } else {
        let n = usize::from(first & 0x7f);
        if n > 4 {
            return Err(DerError::NotDer("length over 4 bytes"));
        }
        let bytes = after_len.get(..n).ok_or(DerError::Truncated)?;
        if bytes[0] == 0 {
            return Err(DerError::NotDer("non-minimal length"));
        }
        let len = bytes.iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        if len < 0x80 {
            return Err(DerError::NotDer("non-minimal length"));
        }
        after_len = &after_len[n..];
        len
    };
    let header = input.len() - after_len.len();
    if after_len.len() < len {
        return Err(DerError::Truncated);
    }
    let raw = &input[..header + len];
    Ok((Tlv { tag, value: &after_len[..len], raw }, &after_len[len..]))
}

/// Parse a UTCTime or GeneralizedTime (`YYYYMMDDHHMMSS[.f*]Z`) into seconds since the Unix epoch and
/// milliseconds. Only the `Z` (UTC) form is accepted, as DER requires.
pub fn parse_time(t: &Tlv<'_>) -> Result<(i64, u32), DerError> {
    let s = t.value;
    let (year, rest) = match t.tag {
        tag::UTC_TIME => {
            let yy = digits(s.get(..2).ok_or(DerError::Truncated)?)?;
            // RFC 5280 4.1.2.5.1: 50-99 are 19xx, 00-49 are 20xx.
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &s[2..])
        }
        tag::GENERALIZED_TIME => (digits(s.get(..4).ok_or(DerError::Truncated)?)?, &s[4..]),
        found => return Err(DerError::Unexpected { expected: "a time", found }),
    };
    if rest.len() < 11 || *rest.last().unwrap_or(&0) != b'Z' {
        return Err(DerError::NotDer("time is not YYMMDDHHMMSSZ"));
    }
    let month = digits(&rest[0..2])?;
    let day = digits(&rest[2..4])?;
    let hour = digits(&rest[4..6])?;
    let min = digits(&rest[6..8])?;
    let sec = digits(&rest[8..10])?;
    let frac = &rest[10..rest.len() - 1];
    let millis = match frac {
        [] => 0,
        [b'.', f @ ..] if !f.is_empty() && t.tag == tag::GENERALIZED_TIME => {
            let mut ms = 0u32;
            for i in 0..3 {
                ms = ms * 10 + f.get(i).map_or(Ok(0), |&d| digits(&[d]).map(|d| d as u32))?;
            }
            digits(f)?; // every fraction digit must be a digit
            ms
        }
        _ => return Err(DerError::NotDer("time has an unexpected suffix")),
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return Err(DerError::NotDer("time out of range"));
    }
    let days = days_from_civil(year, month, day);
    Ok((days * 86_400 + hour * 3600 + min * 60 + sec, millis))
}

fn digits(d: &[u8]) -> Result<i64, DerError> {
    d.iter().try_fold(0i64, |acc, &c| {
        if c.is_ascii_digit() {
            Ok(acc * 10 + i64::from(c - b'0'))
        } else {
            Err(DerError::NotDer("non-digit in a time"))
        }
    })
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Format seconds since the epoch (and milliseconds) as RFC 3339 UTC: `2025-06-10T22:29:20.819Z`, the
/// fraction only when there is one.
pub fn rfc3339(secs: i64, millis: u32) -> String {
    let whole = crate::analysis::pe::rfc3339(secs);
    if millis == 0 { whole } else { format!("{}.{millis:03}Z", whole.trim_end_matches('Z')) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_short_and_long_lengths() {
        let (t, rest) = read_tlv(&[0x04, 0x02, 0xaa, 0xbb, 0xff]).unwrap();
        assert_eq!((t.tag, t.value, t.raw.len(), rest), (4, &[0xaa, 0xbb][..], 4, &[0xff][..]));
        let mut long = vec![0x04, 0x81, 0x80];
        long.extend(std::iter::repeat_n(7, 0x80));
        let (t, rest) = read_tlv(&long).unwrap();
        assert_eq!((t.value.len(), t.raw.len(), rest.len()), (0x80, 0x83, 0));
    }

    #[test]
    fn rejects_what_is_not_der() {
        assert_eq!(read_tlv(&[]).unwrap_err(), DerError::Truncated);
        assert_eq!(read_tlv(&[0x30]).unwrap_err(), DerError::Truncated);
        assert_eq!(read_tlv(&[0x30, 0x80, 0, 0]).unwrap_err(), DerError::NotDer("indefinite length"));
        assert_eq!(read_tlv(&[0x04, 0x81, 0x05, 1, 2, 3, 4, 5]).unwrap_err(), DerError::NotDer("non-minimal length"));
        assert_eq!(read_tlv(&[0x04, 0x82, 0x00, 0x90]).unwrap_err(), DerError::NotDer("non-minimal length"));
        assert_eq!(read_tlv(&[0x04, 0x85, 1, 1, 1, 1, 1]).unwrap_err(), DerError::NotDer("length over 4 bytes"));
        // A length far beyond the input is "truncated", never an allocation.
        assert_eq!(read_tlv(&[0x04, 0x84, 0x7f, 0xff, 0xff, 0xff, 0]).unwrap_err(), DerError::Truncated);
        assert_eq!(read_tlv(&[0x1f, 0x81, 0x01, 0x00]).unwrap_err(), DerError::NotDer("high tag number"));
    }

    #[test]
    fn times() {
        let utc = |s: &str| parse_time(&Tlv { tag: tag::UTC_TIME, value: s.as_bytes(), raw: &[] });
        let gtime = |s: &str| parse_time(&Tlv { tag: tag::GENERALIZED_TIME, value: s.as_bytes(), raw: &[] });
        assert_eq!(utc("700101000000Z").unwrap(), (0, 0));
        assert_eq!(rfc3339(utc("250610222920Z").unwrap().0, 0), "2025-06-10T22:29:20Z");
        assert_eq!(utc("491231235959Z").unwrap().0, 2_524_607_999);
        let (s, ms) = gtime("20250610222920.819Z").unwrap();
        assert_eq!(rfc3339(s, ms), "2025-06-10T22:29:20.819Z");
        assert_eq!(gtime("20250610222920.8Z").unwrap().1, 800);
        assert!(gtime("20250610222920+0100").is_err());
        assert!(utc("250610222920.5Z").is_err());
        assert!(gtime("20251310222920Z").is_err());
        assert!(gtime("2025").is_err());
        assert_eq!(rfc3339(-1, 0), "1969-12-31T23:59:59Z");
        assert_eq!(rfc3339(951_782_400, 0), "2000-02-29T00:00:00Z");
    }
}
