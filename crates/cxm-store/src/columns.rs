//! The event log again, by columns. A block holds up to [`BLOCK_EVENTS`] of one tenant's
//! named events in log order: who (user and anonymous ids, dictionary-coded), what (the
//! name), where (the channel) and when. A cold journey walk reads a few hundred blocks
//! instead of millions of rows; identities stay as ids, so a merge or unmerge in the
//! identity graph needs no rewrite (the walk resolves them), while an erasure or a
//! retention purge drops the tenant's blocks and the compactor writes them again.
//!
//! Layout (little-endian): a format byte, the event count, three dictionaries (names,
//! channels, identities: each a count, then length-prefixed UTF-8), then the columns user,
//! anonymous, name, channel (u32 each; [`NONE`] for no id) and ts (i64).

use crate::{Result, StoreError};

pub const BLOCK_EVENTS: usize = 65_536;
/// No user id or no anonymous id.
pub const NONE: u32 = u32::MAX;
const FORMAT: u8 = 1;

/// One named event as the compactor reads it from the log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogColumns {
    pub seq: i64,
    pub user_id: Option<String>,
    pub anonymous_id: Option<String>,
    pub name: String,
    pub channel: String,
    pub ts_ms: i64,
}

/// A stored block: the range of the log it covers (one tenant's events in it) and its body.
#[derive(Debug, Clone)]
pub struct EventBlock {
    pub first_seq: i64,
    pub last_seq: i64,
    pub body: Vec<u8>,
}

/// The identity dictionary holds both kinds; a prefix says which.
pub fn user_key(v: &str) -> String {
    format!("u{v}")
}

pub fn anon_key(v: &str) -> String {
    format!("a{v}")
}

#[derive(Default)]
struct Dict<'a> {
    ids: std::collections::HashMap<&'a str, u32>,
    words: Vec<&'a str>,
}

impl<'a> Dict<'a> {
    fn id(&mut self, w: &'a str) -> u32 {
        let next = self.words.len() as u32;
        *self.ids.entry(w).or_insert_with(|| {
            self.words.push(w);
            next
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.words.len() as u32).to_le_bytes());
        for w in &self.words {
            out.extend_from_slice(&(w.len() as u32).to_le_bytes());
            out.extend_from_slice(w.as_bytes());
        }
    }
}

/// Encodes rows (log order) into a block body.
pub fn encode(rows: &[LogColumns]) -> Vec<u8> {
    let keys: Vec<(Option<String>, Option<String>)> = rows
        .iter()
        .map(|r| {
            (
                r.user_id.as_deref().map(user_key),
                r.anonymous_id.as_deref().map(anon_key),
            )
        })
        .collect();
    let (mut names, mut channels, mut ids) = (Dict::default(), Dict::default(), Dict::default());
    let mut cols: [Vec<u32>; 4] = Default::default();
    for (r, (u, a)) in rows.iter().zip(&keys) {
        cols[0].push(u.as_deref().map_or(NONE, |k| ids.id(k)));
        cols[1].push(a.as_deref().map_or(NONE, |k| ids.id(k)));
        cols[2].push(names.id(&r.name));
        cols[3].push(channels.id(&r.channel));
    }
    let mut out = Vec::with_capacity(rows.len() * 24 + 64);
    out.push(FORMAT);
    out.extend_from_slice(&(rows.len() as u32).to_le_bytes());
    names.write(&mut out);
    channels.write(&mut out);
    ids.write(&mut out);
    for c in &cols {
        for v in c {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    for r in rows {
        out.extend_from_slice(&r.ts_ms.to_le_bytes());
    }
    out
}

/// A decoded block, borrowing its words from the body.
#[derive(Debug)]
pub struct Columns<'a> {
    pub names: Vec<&'a str>,
    pub channels: Vec<&'a str>,
    pub ids: Vec<&'a str>,
    pub user: Vec<u32>,
    pub anon: Vec<u32>,
    pub name: Vec<u32>,
    pub channel: Vec<u32>,
    pub ts: Vec<i64>,
}

impl Columns<'_> {
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }
}

struct Reader<'a> {
    body: &'a [u8],
    at: usize,
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(format!("event block corrupt: {what}"))
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.body.len());
        let end = end.ok_or_else(|| corrupt("cut short"))?;
        let s = &self.body[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn dict(&mut self) -> Result<Vec<&'a str>> {
        let n = self.u32()? as usize;
        // every word takes at least its length: a count beyond the body is corruption
        if n > self.body.len() / 4 {
            return Err(corrupt("dictionary larger than the block"));
        }
        (0..n)
            .map(|_| {
                let len = self.u32()? as usize;
                std::str::from_utf8(self.take(len)?).map_err(|_| corrupt("word is not utf-8"))
            })
            .collect()
    }

    fn ids(&mut self, n: usize, bound: usize, none: bool) -> Result<Vec<u32>> {
        let b = self.take(n.checked_mul(4).ok_or_else(|| corrupt("size"))?)?;
        let v: Vec<u32> = b
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        if v.iter()
            .any(|x| (*x as usize) >= bound && !(none && *x == NONE))
        {
            return Err(corrupt("id outside its dictionary"));
        }
        Ok(v)
    }
}

/// Decodes a block body; a body that does not hold together is an error, never a panic.
pub fn decode(body: &[u8]) -> Result<Columns<'_>> {
    let mut r = Reader { body, at: 0 };
    if r.take(1)?[0] != FORMAT {
        return Err(corrupt("unknown format"));
    }
    let n = r.u32()? as usize;
    let names = r.dict()?;
    let channels = r.dict()?;
    let ids = r.dict()?;
    let user = r.ids(n, ids.len(), true)?;
    let anon = r.ids(n, ids.len(), true)?;
    let name = r.ids(n, names.len(), false)?;
    let channel = r.ids(n, channels.len(), false)?;
    let ts = r
        .take(n.checked_mul(8).ok_or_else(|| corrupt("size"))?)?
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect();
    if r.at != body.len() {
        return Err(corrupt("trailing bytes"));
    }
    Ok(Columns {
        names,
        channels,
        ids,
        user,
        anon,
        name,
        channel,
        ts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn row(seq: i64, u: Option<&str>, a: Option<&str>, name: &str, ch: &str) -> LogColumns {
        LogColumns {
            seq,
            user_id: u.map(str::to_string),
            anonymous_id: a.map(str::to_string),
            name: name.into(),
            channel: ch.into(),
            ts_ms: seq * 1000 - 7,
        }
    }

    #[test]
    fn a_block_gives_back_what_went_in() {
        let rows = vec![
            row(1, Some("u1"), Some("a1"), "Chat Started", "chat"),
            row(2, None, Some("a1"), "Chat Started", "chat"),
            row(5, Some("ü-2"), None, "Call Started", "voice"),
        ];
        let body = encode(&rows);
        let c = decode(&body).unwrap();
        assert_eq!(c.len(), 3);
        let word = |d: &[&str], i: u32| (i != NONE).then(|| d[i as usize].to_string());
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(word(&c.ids, c.user[i]), r.user_id.as_deref().map(user_key));
            assert_eq!(
                word(&c.ids, c.anon[i]),
                r.anonymous_id.as_deref().map(anon_key)
            );
            assert_eq!(c.names[c.name[i] as usize], r.name);
            assert_eq!(c.channels[c.channel[i] as usize], r.channel);
            assert_eq!(c.ts[i], r.ts_ms);
        }
        assert_eq!(c.ids.len(), 3, "a1 is stored once");
    }

    proptest! {
        #[test]
        fn damaged_blocks_are_errors_not_panics(cut in 0usize..200, flip in 0usize..200, byte in any::<u8>()) {
            let rows: Vec<_> = (0..5).map(|i| row(i, Some(&format!("u{i}")), None, "Order Completed", "web")).collect();
            let body = encode(&rows);
            let mut flipped = body.clone();
            flipped[flip % body.len()] = byte;
            let _ = decode(&flipped);
            prop_assert!(decode(&body[..cut % body.len()]).is_err());
        }
    }
}
