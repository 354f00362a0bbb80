//! The page is held only as gzip, built from pieces compressed apart: each piece is raw
//! deflate from its own compressor, ended with a sync flush (so it ends on a byte boundary
//! and refers to nothing before it), with the CRC-32 and length of its text. Pieces joined
//! in any order, between a gzip header and an empty final block, are one valid gzip member
//! (RFC 1951 3.2.3, RFC 1952 2.3), so a source's poll recompresses its own series only and
//! the other sources' pieces are reused as they are. The joined page is the pieces' own
//! bytes in order, not a copy of them: a render of thousands of sources costs a few
//! reference counts and a CRC combination per piece, each one multiplication (the piece
//! carries `x^(8 len) mod P`, see `crc32_shift`). The plain text is unpacked on demand.

use std::io::Read;

use bytes::{Buf, Bytes};
use flate2::{Compress, Compression, FlushCompress};

/// Measured on a 10,000-worker page (7.4 MiB of text): level 1 compresses it in 4.6 ms to
/// 268 KiB, level 6 (the default) takes 23.6 ms for 229 KiB. The page is compressed after
/// every poll and the bytes cross a LAN, so the fast level wins.
const LEVEL: Compression = Compression::fast();

/// Text gathered before it is compressed: a large family never waits whole in memory.
const TEXT_CHUNK: usize = 64 * 1024;

/// A gzip header without name, time or flags (RFC 1952 2.3); OS 255 is "unknown".
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
/// A final fixed-Huffman block holding only its end code: what closes the joined pieces.
const FINAL_EMPTY_BLOCK: [u8; 2] = [0x03, 0x00];

/// Deflate that stands alone, with what the gzip trailer needs of its text.
#[derive(Debug, Clone, Default)]
pub struct Piece {
    pub deflate: Bytes,
    /// The CRC-32 of its text.
    crc: u32,
    /// `x^(8 text_len) mod P`: what combines its CRC after another's in one multiplication.
    shift: u32,
    text_len: u64,
}

impl Piece {
    pub fn text_len(&self) -> u64 {
        self.text_len
    }

    pub fn is_empty(&self) -> bool {
        self.text_len == 0
    }
}

/// The reflected CRC-32 polynomial (IEEE 802.3, as gzip uses).
const POLY: u32 = 0xedb8_8320;

/// `a * b mod P` over GF(2), both in the reflected order CRC-32 keeps its bits in (the top
/// bit is `x^0`).
fn multiply_mod_p(a: u32, mut b: u32) -> u32 {
    let mut product = 0;
    for bit in (0..32).rev() {
        if a & (1 << bit) != 0 {
            product ^= b;
        }
        b = if b & 1 != 0 { (b >> 1) ^ POLY } else { b >> 1 };
    }
    product
}

/// `x^(8 bytes) mod P`: the CRC of some text, multiplied by it, is the CRC of that text
/// followed by `bytes` zero bytes (before the final xor), which is how two CRCs combine.
fn crc32_shift(bytes: u64) -> u32 {
    // x^(2^k) for k = 3, 4, ...: squared at each step; x^1 is bit 30 in reflected order.
    let mut square = 1u32 << 30;
    for _ in 0..3 {
        square = multiply_mod_p(square, square);
    }
    let mut shift = 1u32 << 31;
    let mut n = bytes;
    while n != 0 {
        if n & 1 != 0 {
            shift = multiply_mod_p(square, shift);
        }
        square = multiply_mod_p(square, square);
        n >>= 1;
    }
    shift
}

/// The CRC-32 of `a`'s text followed by `b`'s, from theirs.
fn crc32_combine(a: u32, b_crc: u32, b_shift: u32) -> u32 {
    multiply_mod_p(b_shift, a) ^ b_crc
}

/// Writes text into a piece, compressing it a chunk at a time.
pub struct PieceWriter {
    text: Vec<u8>,
    deflate: Vec<u8>,
    compress: Compress,
    crc: crc32fast::Hasher,
    text_len: u64,
}

impl Default for PieceWriter {
    fn default() -> Self {
        PieceWriter {
            text: Vec::new(),
            deflate: Vec::new(),
            compress: Compress::new(LEVEL, false),
            crc: crc32fast::Hasher::new(),
            text_len: 0,
        }
    }
}

impl PieceWriter {
    /// Where to write the next text; call `written` after.
    pub fn text(&mut self) -> &mut Vec<u8> {
        &mut self.text
    }

    /// Compresses what was written once it is a chunk.
    pub fn written(&mut self) {
        if self.text.len() >= TEXT_CHUNK {
            self.deflate_text(FlushCompress::None);
        }
    }

    pub fn has_text(&self) -> bool {
        self.text_len > 0 || !self.text.is_empty()
    }

    /// The piece, ended with a sync flush; the writer starts over, empty, keeping its
    /// compressor (a few hundred KiB of tables) for the next piece.
    pub fn finish(&mut self) -> Piece {
        if !self.has_text() {
            return Piece::default();
        }
        self.deflate_text(FlushCompress::Sync);
        self.compress.reset();
        let text_len = std::mem::take(&mut self.text_len);
        Piece {
            deflate: Bytes::from(std::mem::take(&mut self.deflate)),
            crc: std::mem::take(&mut self.crc).finalize(),
            shift: crc32_shift(text_len),
            text_len,
        }
    }

    fn deflate_text(&mut self, flush: FlushCompress) {
        self.crc.update(&self.text);
        self.text_len += self.text.len() as u64;
        let mut rest: &[u8] = &self.text;
        loop {
            // Room for the worst case of what is left (deflate's stored blocks add 5 bytes
            // every 16 KiB) and the flush marker.
            self.deflate.reserve(rest.len() + rest.len() / 1024 + 64);
            let before = self.compress.total_in();
            // Only an invalid compression state errs; a fresh compressor has none.
            if self
                .compress
                .compress_vec(rest, &mut self.deflate, flush)
                .is_err()
            {
                break;
            }
            let taken = usize::try_from(self.compress.total_in() - before).unwrap_or(usize::MAX);
            rest = rest.get(taken..).unwrap_or_default();
            // Done once the input is in and the output did not fill its room.
            if rest.is_empty() && self.deflate.len() < self.deflate.capacity() {
                break;
            }
        }
        self.text.clear();
    }
}

/// Pieces joined into one gzip member: the header, each piece's own bytes, the end.
#[derive(Debug, Clone, Default)]
pub struct Joined {
    pub segments: Vec<Bytes>,
    /// The bytes of the gzip member.
    pub gzip_len: usize,
    /// The length of the text it unpacks to.
    pub text_len: u64,
}

/// Joins pieces into one gzip member; an empty piece takes no place.
pub fn join<'a>(pieces: impl IntoIterator<Item = &'a Piece>) -> Joined {
    let mut segments = vec![Bytes::from_static(&GZIP_HEADER)];
    let mut crc = 0u32;
    let mut text_len: u64 = 0;
    let mut gzip_len = GZIP_HEADER.len();
    for piece in pieces.into_iter().filter(|p| !p.is_empty()) {
        gzip_len += piece.deflate.len();
        segments.push(piece.deflate.clone());
        crc = crc32_combine(crc, piece.crc, piece.shift);
        text_len += piece.text_len;
    }
    let mut end = Vec::with_capacity(FINAL_EMPTY_BLOCK.len() + 8);
    end.extend_from_slice(&FINAL_EMPTY_BLOCK);
    end.extend_from_slice(&crc.to_le_bytes());
    // ISIZE is the length modulo 2^32 (RFC 1952 2.3.1).
    end.extend_from_slice(&((text_len & 0xffff_ffff) as u32).to_le_bytes());
    gzip_len += end.len();
    segments.push(Bytes::from(end));
    Joined {
        segments,
        gzip_len,
        text_len,
    }
}

impl Joined {
    /// The gzip member in chunks for a response body: large pieces as they are, small ones
    /// gathered into chunks of about 64 KiB (a page of many small sources is many small
    /// pieces, and a write each would cost more than the copy).
    pub fn chunks(&self) -> impl Iterator<Item = Bytes> + '_ {
        let mut segments = self.segments.iter().peekable();
        std::iter::from_fn(move || {
            let first = segments.next()?;
            if first.len() >= TEXT_CHUNK / 4 {
                return Some(first.clone());
            }
            let mut gathered = Vec::with_capacity(TEXT_CHUNK);
            gathered.extend_from_slice(first);
            while let Some(next) = segments.next_if(|s| s.len() < TEXT_CHUNK / 4) {
                gathered.extend_from_slice(next);
                if gathered.len() >= TEXT_CHUNK {
                    break;
                }
            }
            Some(Bytes::from(gathered))
        })
    }

    /// The gzip member in one piece (tests, and small pages).
    pub fn to_bytes(&self) -> Bytes {
        let mut all = Vec::with_capacity(self.gzip_len);
        for segment in &self.segments {
            all.extend_from_slice(segment);
        }
        Bytes::from(all)
    }
}

/// Reads a joined page back as text, a chunk at a time.
pub struct Unpacking {
    decoder: flate2::read::GzDecoder<Segments>,
}

/// The gzip member's segments, read one after another.
struct Segments {
    segments: std::vec::IntoIter<Bytes>,
    current: Bytes,
}

impl Read for Segments {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.segments.next() {
                Some(next) => self.current = next,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        self.current.copy_to_slice(&mut buf[..n]);
        Ok(n)
    }
}

impl Unpacking {
    pub fn new(segments: Vec<Bytes>) -> Self {
        Unpacking {
            decoder: flate2::read::GzDecoder::new(Segments {
                segments: segments.into_iter(),
                current: Bytes::new(),
            }),
        }
    }

    /// The next chunk of text; None at the end. The page was made here, so it unpacks.
    pub fn next_chunk(&mut self) -> Option<Bytes> {
        let mut chunk = vec![0; TEXT_CHUNK];
        let n = self.decoder.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        chunk.truncate(n);
        Some(Bytes::from(chunk))
    }

    /// The whole text (tests and small pages).
    pub fn all(self) -> Vec<u8> {
        self.flat_map(|chunk| chunk.unwrap_or_default()).collect()
    }
}

/// Chunks of text as a response body streams them: a plain scrape of a large page holds
/// one chunk of it at a time, not the whole text.
impl Iterator for Unpacking {
    type Item = Result<Bytes, std::io::Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_chunk().map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(text: &[u8]) -> Piece {
        let mut w = PieceWriter::default();
        // Written in uneven steps, past the chunk size, as a render writes lines.
        for part in text.chunks(7_919) {
            w.text().extend_from_slice(part);
            w.written();
        }
        w.finish()
    }

    fn text_of(seed: u64, lines: usize) -> Vec<u8> {
        let mut rng = fastrand::Rng::with_seed(seed);
        (0..lines)
            .flat_map(|i| format!("m{{worker=\"rig{i}\"}} {}\n", rng.f64()).into_bytes())
            .collect()
    }

    #[test]
    fn pieces_joined_in_any_order_unpack_to_their_texts_in_that_order() {
        let texts = [
            text_of(1, 20_000),
            b"# HELP a b\n".to_vec(),
            text_of(2, 3),
            Vec::new(),
        ];
        let pieces: Vec<Piece> = texts.iter().map(|t| piece(t)).collect();
        for order in [[0, 1, 2, 3], [2, 0, 3, 1], [1, 3, 2, 0]] {
            let joined = join(order.iter().map(|&i| &pieces[i]));
            let gzip = joined.to_bytes();
            assert_eq!(gzip.len(), joined.gzip_len);
            let expected: Vec<u8> = order.iter().flat_map(|&i| texts[i].clone()).collect();
            // flate2's own decoder checks the CRC and the length of the trailer.
            let mut unpacked = Vec::new();
            flate2::read::GzDecoder::new(&gzip[..])
                .read_to_end(&mut unpacked)
                .unwrap();
            assert_eq!(unpacked, expected);
            assert_eq!(Unpacking::new(joined.segments.clone()).all(), expected);
            assert_eq!(
                joined.segments.len(),
                3 + 2,
                "the empty piece takes no place"
            );
            let chunked: Vec<u8> = joined.chunks().flat_map(|c| c.to_vec()).collect();
            assert_eq!(chunked, gzip.to_vec(), "the body's chunks are the member");
        }
    }

    #[test]
    fn an_empty_page_is_a_valid_gzip_of_nothing() {
        let gzip = join([]).to_bytes();
        let mut unpacked = Vec::new();
        flate2::read::GzDecoder::new(&gzip[..])
            .read_to_end(&mut unpacked)
            .unwrap();
        assert!(unpacked.is_empty());
    }

    /// The combination by one multiplication is crc32fast's CRC of the whole, for texts of
    /// every length up to past a chunk.
    #[test]
    fn two_crcs_combine_into_the_crc_of_both_texts() {
        let mut rng = fastrand::Rng::with_seed(9);
        for len in [0usize, 1, 2, 7, 100, 4096, 70_000] {
            let a: Vec<u8> = (0..rng.usize(0..500)).map(|_| rng.u8(..)).collect();
            let b: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
            let whole: Vec<u8> = a.iter().chain(&b).copied().collect();
            let combined = crc32_combine(
                crc32fast::hash(&a),
                crc32fast::hash(&b),
                crc32_shift(b.len() as u64),
            );
            assert_eq!(combined, crc32fast::hash(&whole), "a {} + b {len}", a.len());
        }
    }

    #[test]
    fn a_piece_compresses_like_one_stream() {
        let text = text_of(3, 10_000);
        let alone = piece(&text);
        let mut whole = flate2::write::GzEncoder::new(Vec::new(), LEVEL);
        std::io::Write::write_all(&mut whole, &text).unwrap();
        let whole = whole.finish().unwrap();
        assert_eq!(alone.text_len(), text.len() as u64);
        // Chunked input with one sync flush costs at most a few percent over one stream.
        assert!(
            (alone.deflate.len() as f64) < whole.len() as f64 * 1.05,
            "{} vs {}",
            alone.deflate.len(),
            whole.len()
        );
    }
}
