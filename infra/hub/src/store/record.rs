//! The records inside a block (logs and spans alike): strings as a `u32` LE length and their
//! bytes, numbers as `to_le_bytes`. A leaf: it imports nothing of the store.

/// Append `s` as a `u32` LE length and its bytes (absent: length `u32::MAX`).
pub(super) fn put(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => {
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        None => out.extend_from_slice(&u32::MAX.to_le_bytes()),
    }
}

/// Reads back what [`put`] and `to_le_bytes` wrote; `None` past the end or on bad UTF-8.
pub(super) struct Cursor<'a> {
    pub raw: &'a [u8],
    pub at: usize,
}

impl<'a> Cursor<'a> {
    pub fn i64(&mut self) -> Option<i64> {
        let v = i64::from_le_bytes(self.raw.get(self.at..self.at + 8)?.try_into().ok()?);
        self.at += 8;
        Some(v)
    }

    /// Past a string [`put`] wrote, unread.
    pub fn skip_str(&mut self) -> Option<()> {
        let len = u32::from_le_bytes(self.raw.get(self.at..self.at + 4)?.try_into().ok()?);
        self.at += 4;
        if len != u32::MAX {
            self.raw.get(self.at..self.at + len as usize)?;
            self.at += len as usize;
        }
        Some(())
    }

    /// A string, or `Some(None)` where [`put`] wrote an absent one.
    pub fn str(&mut self) -> Option<Option<&'a str>> {
        let len = u32::from_le_bytes(self.raw.get(self.at..self.at + 4)?.try_into().ok()?);
        self.at += 4;
        if len == u32::MAX {
            return Some(None);
        }
        let s = std::str::from_utf8(self.raw.get(self.at..self.at + len as usize)?).ok()?;
        self.at += len as usize;
        Some(Some(s))
    }
}
