//! CI report formats, written from the same reports as text and JSON.

use crate::cli::CheckFormat;
use crate::report::InputReport;

pub fn render(format: CheckFormat, reports: &[InputReport]) -> String {
    let _ = format;
    crate::report::json(reports)
}
