//! The page is held only as gzip, built from pieces compressed apart: each piece is raw
//! deflate from its own compressor, ended with a sync flush (so it ends on a byte boundary
//! and refers to nothing before it), with the CRC-32 and length of its text. Pieces joined
//! in any order, between a gzip header and an empty final block, are one valid gzip member
//! (RFC 1951 3.2.3, RFC 1952 2.3), so a source's poll recompresses its own series only and
//! the other sources' pieces are reused as they are. The plain text is unpacked on demand.

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
    crc: crc32fast::Hasher,
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
        Piece {
            deflate: Bytes::from(std::mem::take(&mut self.deflate)),
            crc: std::mem::take(&mut self.crc),
            text_len: std::mem::take(&mut self.text_len),
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

/// Pieces joined into one gzip member.
pub struct Joined {
    pub gzip: Bytes,
    /// The length of the text it unpacks to.
    pub text_len: u64,
    /// Where each non-empty piece's deflate landed in `gzip`, in order.
    pub placed: Vec<std::ops::Range<usize>>,
}

/// Joins pieces into one gzip member; an empty piece takes no place.
pub fn join<'a>(pieces: impl IntoIterator<Item = &'a Piece>) -> Joined {
    let pieces: Vec<&Piece> = pieces.into_iter().filter(|p| !p.is_empty()).collect();
    let size = GZIP_HEADER.len()
        + pieces.iter().map(|p| p.deflate.len()).sum::<usize>()
        + FINAL_EMPTY_BLOCK.len()
        + 8;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&GZIP_HEADER);
    let mut crc = crc32fast::Hasher::new();
    let mut text_len: u64 = 0;
    let mut placed = Vec::with_capacity(pieces.len());
    for piece in pieces {
        let start = out.len();
        out.extend_from_slice(&piece.deflate);
        placed.push(start..out.len());
        crc.combine(&piece.crc);
        text_len += piece.text_len;
    }
    out.extend_from_slice(&FINAL_EMPTY_BLOCK);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    // ISIZE is the length modulo 2^32 (RFC 1952 2.3.1).
    out.extend_from_slice(&((text_len & 0xffff_ffff) as u32).to_le_bytes());
    Joined {
        gzip: Bytes::from(out),
        text_len,
        placed,
    }
}

/// Reads a joined page back as text, a chunk at a time.
pub struct Unpacking {
    decoder: flate2::read::GzDecoder<bytes::buf::Reader<Bytes>>,
}

impl Unpacking {
    pub fn new(gzip: Bytes) -> Self {
        Unpacking {
            decoder: flate2::read::GzDecoder::new(gzip.reader()),
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
            let Joined { gzip, placed, .. } = join(order.iter().map(|&i| &pieces[i]));
            let expected: Vec<u8> = order.iter().flat_map(|&i| texts[i].clone()).collect();
            // flate2's own decoder checks the CRC and the length of the trailer.
            let mut unpacked = Vec::new();
            flate2::read::GzDecoder::new(&gzip[..])
                .read_to_end(&mut unpacked)
                .unwrap();
            assert_eq!(unpacked, expected);
            assert_eq!(Unpacking::new(gzip.clone()).all(), expected);
            assert_eq!(placed.len(), 3, "the empty piece takes no place");
            for (range, i) in placed.iter().zip(order.iter().filter(|&&i| i != 3)) {
                assert_eq!(gzip.slice(range.clone()), pieces[*i].deflate);
            }
        }
    }

    #[test]
    fn an_empty_page_is_a_valid_gzip_of_nothing() {
        let Joined { gzip, .. } = join([]);
        let mut unpacked = Vec::new();
        flate2::read::GzDecoder::new(&gzip[..])
            .read_to_end(&mut unpacked)
            .unwrap();
        assert!(unpacked.is_empty());
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
