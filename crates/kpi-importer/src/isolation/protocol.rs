//! The parse-worker protocol, version 1: length-prefixed frames over the worker's stdin and
//! stdout.
//!
//! ```text
//! frame     = length:u32le payload            (length ≤ MAX_FRAME_BYTES)
//! hello     = "KPIW" version:u16le memory_limit:u64le cpu_seconds:u64le      parent → worker
//! ready     = "KPIW" version:u16le limits_applied:u8                          worker → parent
//! request   = 1:u8 workbook-bytes                                             parent → worker
//! answer    = 0:u8 sheets | 1:u8 problem                                      worker → parent
//! sheets    = count:u32 (name:str cells:u32 (row:u32 col:u32 cell)*)*
//! cell      = 0 text:str | 1 number:f64 | 2 serial:f64 y:u16 m:u8 d:u8 | 3 bool:u8
//!           | 4 error:str | 5 (formula without result)
//! problem   = 0 detail:str (not a workbook) | 1 (password) | 2 detail:str (too large)
//!           | 3 detail:str (unreadable) | 4 detail:str (reader failed) | 5 sheet:str cell:str
//! str       = length:u32 utf-8
//! ```
//!
//! Decoding never trusts a length: every read is checked against what the frame holds, so a
//! confused worker gives a decode error, never a panic or a huge allocation.

use crate::issues::Problem;
use crate::workbook::{CellValue, MAX_FILE_BYTES, SheetCells};

/// The protocol's magic bytes, at the start of `hello` and `ready`.
pub const MAGIC: &[u8; 4] = b"KPIW";
/// The protocol version both sides must speak.
pub const VERSION: u16 = 1;
/// Largest frame either side accepts: a whole workbook plus its request tag, or an answer.
pub const MAX_FRAME_BYTES: u32 = (MAX_FILE_BYTES as u32).saturating_mul(2);

/// The most a frame's announced length reserves before its bytes arrive; the rest grows as
/// bytes really do, so a lying length allocates little. Most frames fit: a request is a
/// workbook of a few KiB, and growing a buffer from nothing reallocated it about eight times.
pub const FRAME_RESERVE_BYTES: u32 = 64 * 1024;

/// The length prefix of a frame carrying `payload`, or `None` past [`MAX_FRAME_BYTES`].
pub fn length_prefix(payload: &[u8]) -> Option<[u8; 4]> {
    u32::try_from(payload.len()).ok().filter(|&n| n <= MAX_FRAME_BYTES).map(u32::to_le_bytes)
}

/// The payload length a received prefix announces, refused past [`MAX_FRAME_BYTES`] before
/// anything is read.
pub fn announced_length(prefix: [u8; 4]) -> Result<u32, ProtocolError> {
    let length = u32::from_le_bytes(prefix);
    if length > MAX_FRAME_BYTES { Err(ProtocolError(format!("a {length}-byte frame"))) } else { Ok(length) }
}

/// The fewest bytes a cell takes in an answer: its row, its column and its tag.
const MIN_CELL_BYTES: usize = 9;

const REQUEST_PARSE: u8 = 1;
const ANSWER_SHEETS: u8 = 0;
const ANSWER_PROBLEM: u8 = 1;

/// What the worker read from a workbook: its sheets, or why it could not.
pub type Answer = Result<Vec<SheetCells>, Problem>;

/// The limits the parent asks the worker to put on itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    pub memory_limit_bytes: u64,
    pub cpu_seconds_per_file: u64,
}

/// A frame that does not follow the protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parse-worker protocol: {0}")]
pub struct ProtocolError(pub String);

fn malformed(what: &str) -> ProtocolError {
    ProtocolError(format!("malformed {what}"))
}

/// Appends protocol values to a payload (the batch's spill and file-report files use the same
/// encoding).
#[derive(Debug, Default)]
pub(crate) struct Encoder(pub(crate) Vec<u8>);

impl Encoder {
    pub(crate) fn u8(&mut self, value: u8) {
        self.0.push(value);
    }
    fn u16(&mut self, value: u16) {
        self.0.extend(value.to_le_bytes());
    }
    pub(crate) fn u32(&mut self, value: u32) {
        self.0.extend(value.to_le_bytes());
    }
    pub(crate) fn u64(&mut self, value: u64) {
        self.0.extend(value.to_le_bytes());
    }
    pub(crate) fn f64(&mut self, value: f64) {
        self.0.extend(value.to_le_bytes());
    }
    pub(crate) fn str(&mut self, value: &str) {
        self.u32(u32::try_from(value.len()).unwrap_or(u32::MAX));
        self.0.extend(value.as_bytes().iter().take(u32::MAX as usize));
    }
}

/// Reads protocol values from a payload, failing on anything short or out of place.
#[derive(Debug)]
pub(crate) struct Decoder<'a>(pub(crate) &'a [u8]);

impl<'a> Decoder<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtocolError> {
        if self.0.len() < n {
            return Err(malformed("frame (too short)"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], ProtocolError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, ProtocolError> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, ProtocolError> {
        self.array().map(u16::from_le_bytes)
    }
    pub(crate) fn u32(&mut self) -> Result<u32, ProtocolError> {
        self.array().map(u32::from_le_bytes)
    }
    pub(crate) fn u64(&mut self) -> Result<u64, ProtocolError> {
        self.array().map(u64::from_le_bytes)
    }
    pub(crate) fn f64(&mut self) -> Result<f64, ProtocolError> {
        self.array().map(f64::from_le_bytes)
    }
    pub(crate) fn str(&mut self) -> Result<String, ProtocolError> {
        let length = self.u32()? as usize;
        let bytes = self.take(length)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| malformed("string (not UTF-8)"))
    }
    pub(crate) fn finish(self) -> Result<(), ProtocolError> {
        if self.0.is_empty() { Ok(()) } else { Err(malformed("frame (trailing bytes)")) }
    }
}

pub fn encode_hello(hello: Hello) -> Vec<u8> {
    let mut out = Encoder::default();
    out.0.extend(MAGIC);
    out.u16(VERSION);
    out.u64(hello.memory_limit_bytes);
    out.u64(hello.cpu_seconds_per_file);
    out.0
}

pub fn decode_hello(payload: &[u8]) -> Result<Hello, ProtocolError> {
    let mut input = Decoder(payload);
    check_magic_and_version(&mut input)?;
    let hello = Hello { memory_limit_bytes: input.u64()?, cpu_seconds_per_file: input.u64()? };
    input.finish()?;
    Ok(hello)
}

pub fn encode_ready(limits_applied: bool) -> Vec<u8> {
    let mut out = Encoder::default();
    out.0.extend(MAGIC);
    out.u16(VERSION);
    out.u8(u8::from(limits_applied));
    out.0
}

/// Whether the worker applied its limits.
pub fn decode_ready(payload: &[u8]) -> Result<bool, ProtocolError> {
    let mut input = Decoder(payload);
    check_magic_and_version(&mut input)?;
    let applied = input.u8()? != 0;
    input.finish()?;
    Ok(applied)
}

fn check_magic_and_version(input: &mut Decoder<'_>) -> Result<(), ProtocolError> {
    if input.take(MAGIC.len())? != MAGIC {
        return Err(ProtocolError("not a parse worker (bad magic)".into()));
    }
    match input.u16()? {
        VERSION => Ok(()),
        other => Err(ProtocolError(format!("version {other}, expected {VERSION}"))),
    }
}

pub fn encode_request(workbook: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(workbook.len() + 1);
    payload.push(REQUEST_PARSE);
    payload.extend_from_slice(workbook);
    payload
}

/// The workbook bytes of a request.
pub fn decode_request(payload: &[u8]) -> Result<&[u8], ProtocolError> {
    match payload.split_first() {
        Some((&REQUEST_PARSE, workbook)) => Ok(workbook),
        _ => Err(malformed("request")),
    }
}

pub fn encode_answer(answer: &Answer) -> Vec<u8> {
    let mut out = Encoder::default();
    match answer {
        Ok(sheets) => {
            out.u8(ANSWER_SHEETS);
            out.u32(sheets.len() as u32);
            for sheet in sheets {
                out.str(&sheet.name);
                out.u32(sheet.len() as u32);
                for ((row, col), value) in sheet.iter() {
                    out.u32(row);
                    out.u32(col);
                    encode_cell(&mut out, value);
                }
            }
        }
        Err(problem) => {
            out.u8(ANSWER_PROBLEM);
            encode_problem(&mut out, problem);
        }
    }
    out.0
}

fn encode_cell(out: &mut Encoder, value: &CellValue) {
    match value {
        CellValue::Text(text) => {
            out.u8(0);
            out.str(text);
        }
        CellValue::Number(number) => {
            out.u8(1);
            out.f64(*number);
        }
        CellValue::Date { serial, ymd: (year, month, day) } => {
            out.u8(2);
            out.f64(*serial);
            out.u16(*year);
            out.u8(*month);
            out.u8(*day);
        }
        CellValue::Bool(value) => {
            out.u8(3);
            out.u8(u8::from(*value));
        }
        CellValue::Error(text) => {
            out.u8(4);
            out.str(text);
        }
        CellValue::FormulaWithoutResult => out.u8(5),
    }
}

/// Problems a reader can run into; anything else travels as a reader failure naming its code.
fn encode_problem(out: &mut Encoder, problem: &Problem) {
    match problem {
        Problem::NotAWorkbook { detail } => {
            out.u8(0);
            out.str(detail);
        }
        Problem::PasswordProtected => out.u8(1),
        Problem::TooLarge { detail } => {
            out.u8(2);
            out.str(detail);
        }
        Problem::Unreadable { detail } => {
            out.u8(3);
            out.str(detail);
        }
        Problem::ReaderFailed { detail } => {
            out.u8(4);
            out.str(detail);
        }
        Problem::CellOutOfBounds { sheet, cell } => {
            out.u8(5);
            out.str(sheet);
            out.str(cell);
        }
        other => {
            out.u8(4);
            out.str(&format!("unexpected problem {}", other.code()));
        }
    }
}

pub fn decode_answer(payload: &[u8]) -> Result<Answer, ProtocolError> {
    let mut input = Decoder(payload);
    let answer = match input.u8()? {
        ANSWER_SHEETS => Ok(decode_sheets(&mut input)?),
        ANSWER_PROBLEM => Err(decode_problem(&mut input)?),
        _ => return Err(malformed("answer")),
    };
    input.finish()?;
    Ok(answer)
}

fn decode_sheets(input: &mut Decoder<'_>) -> Result<Vec<SheetCells>, ProtocolError> {
    let count = input.u32()?;
    let mut sheets = Vec::new();
    for _ in 0..count {
        let name = input.str()?;
        let cell_count = input.u32()?;
        // Reserved from the count only as far as the frame's remaining bytes could hold that
        // many cells: a lying count fails on the frame's end instead.
        let fits = input.0.len() / MIN_CELL_BYTES;
        let mut cells = Vec::with_capacity((cell_count as usize).min(fits));
        for _ in 0..cell_count {
            let position = (input.u32()?, input.u32()?);
            cells.push((position, decode_cell(input)?));
        }
        sheets.push(SheetCells::new(name, cells));
    }
    Ok(sheets)
}

fn decode_cell(input: &mut Decoder<'_>) -> Result<CellValue, ProtocolError> {
    Ok(match input.u8()? {
        0 => CellValue::Text(input.str()?),
        1 => CellValue::Number(input.f64()?),
        2 => CellValue::Date { serial: input.f64()?, ymd: (input.u16()?, input.u8()?, input.u8()?) },
        3 => CellValue::Bool(input.u8()? != 0),
        4 => CellValue::Error(input.str()?),
        5 => CellValue::FormulaWithoutResult,
        _ => return Err(malformed("cell")),
    })
}

fn decode_problem(input: &mut Decoder<'_>) -> Result<Problem, ProtocolError> {
    Ok(match input.u8()? {
        0 => Problem::NotAWorkbook { detail: input.str()? },
        1 => Problem::PasswordProtected,
        2 => Problem::TooLarge { detail: input.str()? },
        3 => Problem::Unreadable { detail: input.str()? },
        4 => Problem::ReaderFailed { detail: input.str()? },
        5 => Problem::CellOutOfBounds { sheet: input.str()?, cell: input.str()? },
        _ => return Err(malformed("problem")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_round_trip() {
        let cells = vec![
            ((0, 0), CellValue::Text("Mã đơn vị".into())),
            ((0, 1), CellValue::Number(12.5)),
            ((3, 2), CellValue::Date { serial: 44927.0, ymd: (2023, 1, 1) }),
            ((4, 2), CellValue::Bool(true)),
            ((5, 2), CellValue::Error("#DIV/0!".into())),
            ((6, 2), CellValue::FormulaWithoutResult),
        ];
        let answers: Vec<Answer> = vec![
            Ok(vec![SheetCells::new("Báo cáo".into(), cells), SheetCells::default()]),
            Err(Problem::PasswordProtected),
            Err(Problem::TooLarge { detail: "a sheet spans 4 × 5 cells".into() }),
            Err(Problem::CellOutOfBounds { sheet: "S".into(), cell: "A1215752192".into() }),
        ];
        for answer in answers {
            assert_eq!(decode_answer(&encode_answer(&answer)), Ok(answer));
        }
    }

    #[test]
    fn hello_and_ready_round_trip_and_versions_are_checked() {
        let hello = Hello { memory_limit_bytes: 512 << 20, cpu_seconds_per_file: 10 };
        assert_eq!(decode_hello(&encode_hello(hello)), Ok(hello));
        assert_eq!(decode_ready(&encode_ready(true)), Ok(true));
        let mut future = encode_ready(true);
        future[4] = 2;
        assert!(decode_ready(&future).is_err());
    }

    #[test]
    fn truncated_or_lying_frames_are_errors() {
        let answer = encode_answer(&Ok(vec![SheetCells::new("S".into(), Vec::new())]));
        for cut in 0..answer.len() {
            assert!(decode_answer(&answer[..cut]).is_err(), "cut at {cut}");
        }
        // A sheet count of four billion with nothing behind it.
        assert!(decode_answer(&[ANSWER_SHEETS, 0xFF, 0xFF, 0xFF, 0xFF]).is_err());
    }
}
