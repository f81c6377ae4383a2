//! The batch's progress on a terminal: a bar on stderr when it is a terminal, the line of each
//! file above it; otherwise one plain line per file on stdout.

use indicatif::{ProgressBar, ProgressStyle};
use kpi_importer::batch::BatchProgress;
use kpi_importer::{FileReport, Lang};

use crate::summary::{file_line, say};

/// Shows a batch's progress as `kpi-import` does.
#[derive(Debug)]
pub struct Terminal {
    bar: ProgressBar,
    visible: bool,
    lang: Lang,
}

impl Terminal {
    /// A bar over `files` files (each is parsed, then stored), drawn only when `visible`.
    pub fn new(files: usize, visible: bool, lang: Lang) -> Terminal {
        let bar = if visible { ProgressBar::new(files as u64 * 2) } else { ProgressBar::hidden() };
        let style = ProgressStyle::with_template("{spinner} [{bar:40}] {pos}/{len} {msg}")
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_message(if lang == Lang::Vi { "đang đọc tệp" } else { "parsing" });
        Terminal { bar, visible, lang }
    }
}

impl BatchProgress for Terminal {
    fn parsed(&self) {
        self.bar.inc(1);
    }

    fn storing(&self) {
        self.bar.set_message(if self.lang == Lang::Vi { "đang lưu" } else { "storing" });
    }

    fn finished(&self, file: &FileReport) {
        let line = file_line(file, self.lang);
        if self.visible {
            self.bar.println(line);
        } else {
            say(&format!("{line}\n"));
        }
        self.bar.inc(1);
    }

    fn done(&self) {
        self.bar.finish_and_clear();
    }
}
