//! A bounds-checked little-endian reader over one event body.
//!
//! Every read names what it was reading when the bytes ran out, so a malformed or truncated
//! event becomes a [`DecodeError`] naming the field and the byte offset, never a panic.

/// Bytes that do not decode as the format says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} (at byte {offset} of the event body)")]
pub struct DecodeError {
    pub what: String,
    pub offset: usize,
}

pub type DecodeResult<T> = Result<T, DecodeError>;

#[derive(Debug, Clone)]
pub struct ByteReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> ByteReader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub fn offset(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The unread bytes, without consuming them.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    pub fn error(&self, what: impl Into<String>) -> DecodeError {
        DecodeError {
            what: what.into(),
            offset: self.pos,
        }
    }

    pub fn take(&mut self, n: usize, what: &str) -> DecodeResult<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.error(format!(
                "{what}: needs {n} bytes, {} left",
                self.remaining()
            )));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub fn skip(&mut self, n: usize, what: &str) -> DecodeResult<()> {
        self.take(n, what).map(|_| ())
    }

    pub fn u8(&mut self, what: &str) -> DecodeResult<u8> {
        Ok(self.take(1, what)?[0])
    }

    /// An unsigned little-endian integer of `n` (1..=8) bytes.
    pub fn uint_le(&mut self, n: usize, what: &str) -> DecodeResult<u64> {
        let bytes = self.take(n, what)?;
        Ok(bytes
            .iter()
            .rev()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    /// An unsigned big-endian integer of `n` (1..=8) bytes.
    pub fn uint_be(&mut self, n: usize, what: &str) -> DecodeResult<u64> {
        let bytes = self.take(n, what)?;
        Ok(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    pub fn u16_le(&mut self, what: &str) -> DecodeResult<u16> {
        self.uint_le(2, what).map(|v| v as u16)
    }

    pub fn u32_le(&mut self, what: &str) -> DecodeResult<u32> {
        self.uint_le(4, what).map(|v| v as u32)
    }

    pub fn u64_le(&mut self, what: &str) -> DecodeResult<u64> {
        self.uint_le(8, what)
    }

    /// A length-encoded integer of the MySQL protocol.
    pub fn lenenc(&mut self, what: &str) -> DecodeResult<u64> {
        match self.u8(what)? {
            n @ 0..=250 => Ok(u64::from(n)),
            252 => self.uint_le(2, what),
            253 => self.uint_le(3, what),
            254 => self.uint_le(8, what),
            other => Err(self.error(format!(
                "{what}: {other:#04x} does not start a length-encoded integer"
            ))),
        }
    }

    /// A length-encoded integer used as a length of bytes still to come.
    pub fn lenenc_len(&mut self, what: &str) -> DecodeResult<usize> {
        let n = self.lenenc(what)?;
        usize::try_from(n)
            .ok()
            .filter(|n| *n <= self.remaining())
            .ok_or_else(|| {
                self.error(format!(
                    "{what}: length {n} exceeds the {} bytes left",
                    self.remaining()
                ))
            })
    }

    pub fn lenenc_bytes(&mut self, what: &str) -> DecodeResult<&'a [u8]> {
        let n = self.lenenc_len(what)?;
        self.take(n, what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_reports_truncation() {
        let mut r = ByteReader::new(&[1, 2, 3, 0xfc, 0x10, 0x00]);
        assert_eq!(r.u16_le("a").unwrap(), 0x0201);
        assert_eq!(r.u8("b").unwrap(), 3);
        assert_eq!(r.lenenc("c").unwrap(), 16);
        let e = r.u32_le("the table id").unwrap_err();
        assert_eq!(e.offset, 6);
        assert!(e.to_string().contains("the table id"), "{e}");
    }

    #[test]
    fn lenenc_length_is_bounded_by_the_buffer() {
        let mut r = ByteReader::new(&[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
        assert!(r.lenenc_len("names").is_err());
        let mut r = ByteReader::new(&[0xff]);
        assert!(r.lenenc("x").is_err());
    }

    #[test]
    fn big_and_little_endian() {
        let mut r = ByteReader::new(&[0x01, 0x02, 0x03, 0x01, 0x02, 0x03]);
        assert_eq!(r.uint_le(3, "x").unwrap(), 0x030201);
        assert_eq!(r.uint_be(3, "x").unwrap(), 0x010203);
    }
}
