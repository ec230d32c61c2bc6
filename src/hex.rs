//! Lower-case hex encoding (the JSON contract writes every digest this way).

/// Encode bytes as lower-case hex.
pub fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Decode hex (either case); `None` unless every character is a hex digit and the length is even.
pub fn decode(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    let mut out = vec![0u8; s.len() / 2];
    crate::store::decode_hex_into(s.as_bytes(), &mut out).then_some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn encodes_lower_case() {
        assert_eq!(super::encode(&[0x00, 0xab, 0xff, 0x10]), "00abff10");
        assert_eq!(super::encode(&[]), "");
        assert_eq!(super::decode("00abFF10"), Some(vec![0x00, 0xab, 0xff, 0x10]));
        assert_eq!(super::decode("abc"), None);
        assert_eq!(super::decode("zz"), None);
    }
}
