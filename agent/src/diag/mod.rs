//! Diagnostics: background sampling, findings rules and the local report.
