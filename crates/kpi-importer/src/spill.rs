//! The files a batch has read, held on disk between its two passes.
//!
//! Two files of one batch for the same unit and period are both rejected, so nothing can be
//! stored before every file has been read; holding every file's cells in memory until then
//! would make a batch's memory grow with its size. The first pass writes each readable file's
//! cells here, in batch order, in the parse workers' own encoding; the second reads them back
//! one at a time. The file is unlinked as soon as it is created, so it vanishes with the
//! process, whatever happens.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::path::PathBuf;

use crate::ReadFile;
use crate::isolation::protocol::{decode_answer, encode_answer};

/// Why the spill file failed.
#[derive(Debug, thiserror::Error)]
pub enum SpillError {
    #[error("the batch's spill file in {folder} failed: {source}")]
    Io { folder: PathBuf, source: std::io::Error },
    #[error("the batch's spill file is corrupt: {0}")]
    Corrupt(String),
}

/// Read files, written one after the other.
#[derive(Debug)]
pub struct Spill {
    writer: BufWriter<File>,
    folder: PathBuf,
    count: usize,
}

/// The spilled files, read back in the order they were written.
#[derive(Debug)]
pub struct SpillRecords {
    reader: BufReader<File>,
    folder: PathBuf,
    remaining: usize,
}

impl Spill {
    /// An empty spill file in the system's temporary folder (`TMPDIR`), already unlinked.
    pub fn create() -> Result<Spill, SpillError> {
        let folder = std::env::temp_dir();
        let io = |source| SpillError::Io { folder: folder.clone(), source };
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let path = folder.join(format!(".kpi-import-{}-{nanos}.spill", std::process::id()));
        let file = File::options().read(true).write(true).create_new(true).open(&path).map_err(io)?;
        std::fs::remove_file(&path).map_err(io)?;
        Ok(Spill { writer: BufWriter::new(file), folder, count: 0 })
    }

    /// Appends one file: its path, hash and cells.
    pub fn push(&mut self, file: &ReadFile) -> Result<(), SpillError> {
        let io = |source| SpillError::Io { folder: self.folder.clone(), source };
        let cells = encode_answer(&file.sheets);
        for part in [file.path.as_bytes(), file.sha256.as_bytes(), &cells] {
            let length = u32::try_from(part.len()).map_err(|_| SpillError::Corrupt("a record over 4 GiB".into()))?;
            self.writer.write_all(&length.to_le_bytes()).map_err(io)?;
            self.writer.write_all(part).map_err(io)?;
        }
        self.count += 1;
        Ok(())
    }

    /// Ends writing; the records can then be read from the first.
    pub fn into_records(self) -> Result<SpillRecords, SpillError> {
        let Spill { writer, folder, count } = self;
        let io = |source| SpillError::Io { folder: folder.clone(), source };
        let mut file = writer.into_inner().map_err(|error| io(error.into_error()))?;
        file.rewind().map_err(io)?;
        Ok(SpillRecords { reader: BufReader::new(file), folder, remaining: count })
    }
}

impl SpillRecords {
    /// The next file, or `None` after the last.
    pub fn next_file(&mut self) -> Option<Result<ReadFile, SpillError>> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        Some(self.read_record())
    }

    fn read_record(&mut self) -> Result<ReadFile, SpillError> {
        let path = String::from_utf8(self.read_part()?).map_err(|_| SpillError::Corrupt("a path".into()))?;
        let sha256 = String::from_utf8(self.read_part()?).map_err(|_| SpillError::Corrupt("a hash".into()))?;
        let sheets = decode_answer(&self.read_part()?).map_err(|error| SpillError::Corrupt(error.to_string()))?;
        Ok(ReadFile { path, sha256, sheets })
    }

    fn read_part(&mut self) -> Result<Vec<u8>, SpillError> {
        let io = |source| SpillError::Io { folder: self.folder.clone(), source };
        let mut length = [0u8; 4];
        self.reader.read_exact(&mut length).map_err(io)?;
        let mut part = vec![0u8; u32::from_le_bytes(length) as usize];
        self.reader.read_exact(&mut part).map_err(io)?;
        Ok(part)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::issues::Problem;
    use crate::workbook::{CellValue, SheetCells};

    #[test]
    fn files_come_back_as_written_in_order() -> Result<(), SpillError> {
        let cells = BTreeMap::from([((0, 0), CellValue::Text("Mã đơn vị".into())), ((3, 2), CellValue::Number(2.5))]);
        let written = vec![
            ReadFile {
                path: "bao-cao/bocbo.xlsx".into(),
                sha256: "ab".repeat(32),
                sheets: Ok(vec![SheetCells { name: "Báo cáo".into(), cells }]),
            },
            ReadFile { path: "x.xls".into(), sha256: String::new(), sheets: Err(Problem::PasswordProtected) },
        ];
        let mut spill = Spill::create()?;
        for file in &written {
            spill.push(file)?;
        }
        let mut records = spill.into_records()?;
        let mut read = Vec::new();
        while let Some(file) = records.next_file() {
            read.push(file?);
        }
        assert_eq!(read, written);
        Ok(())
    }
}
