//! A catalog folder on disk: the `*.toml` scripts and `catalog.sig`, read
//! the same way by the console that sends a catalog and by the agent that
//! keeps one for the person. Reading checks only the form of the files;
//! [`verify`](super::verify) is what decides whether a catalog is trusted.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{
    CatalogError, CatalogFile, CatalogSignature, MAX_FILE_BYTES, SIGNATURE_FILE, SignedCatalog,
};

/// Why a catalog folder could not be read. Each message is one line that
/// names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FolderError {
    #[error("could not {action} {}: {cause}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        cause: io::Error,
    },
    #[error("{} is not UTF-8 text; save it as UTF-8", .path.display())]
    NotText { path: PathBuf },
    #[error(
        "{} is {size} bytes, more than the limit of {limit} for a catalog file; shorten it",
        .path.display()
    )]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: usize,
    },
    #[error("{} is not a regular file; catalog scripts must be plain files", .path.display())]
    NotAFile { path: PathBuf },
    #[error(
        "catalog {dir} is not signed: run `sprijin-console catalog sign {dir} --key FILE`",
        dir = .dir.display()
    )]
    NotSigned { dir: PathBuf },
    #[error("catalog {} is refused: {cause}", .dir.display())]
    Catalog {
        dir: PathBuf,
        cause: Box<CatalogError>,
    },
}

/// Reads a catalog folder and its signature. Only the signature file's
/// form is checked here, so a catalog signed the old way is refused at
/// once; verifying against trusted keys is the reader's next step.
pub fn load_folder(dir: &Path) -> Result<SignedCatalog, FolderError> {
    let files = read_folder(dir)?;
    let signature_file = dir.join(SIGNATURE_FILE);
    let text = match fs::read_to_string(&signature_file) {
        Ok(text) => text,
        Err(cause) if cause.kind() == io::ErrorKind::NotFound => {
            return Err(FolderError::NotSigned {
                dir: dir.to_owned(),
            });
        }
        Err(cause) => return Err(text_error("read", &signature_file, cause)),
    };
    CatalogSignature::parse(text.as_bytes()).map_err(|cause| FolderError::Catalog {
        dir: dir.to_owned(),
        cause: Box::new(cause),
    })?;
    Ok(SignedCatalog {
        files,
        signature: text.into_bytes(),
    })
}

/// Reads every `*.toml` file in `dir`, sorted by name. Hidden files (editor
/// leftovers) are not part of a catalog and are skipped.
pub fn read_folder(dir: &Path) -> Result<Vec<CatalogFile>, FolderError> {
    let entries = fs::read_dir(dir).map_err(|cause| io_error("read catalog folder", dir, cause))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|cause| io_error("read catalog folder", dir, cause))?;
        let path = entry.path();
        let raw_name = entry.file_name();
        let Some(name) = raw_name.to_str() else {
            if raw_name.to_string_lossy().ends_with(".toml") {
                return Err(FolderError::NotText { path });
            }
            continue;
        };
        if !name.ends_with(".toml") || name.starts_with('.') {
            continue;
        }
        let metadata = fs::metadata(&path).map_err(|cause| io_error("read", &path, cause))?;
        if !metadata.is_file() {
            return Err(FolderError::NotAFile { path });
        }
        // Checked before reading so a huge file is never loaded.
        if metadata.len() > MAX_FILE_BYTES as u64 {
            return Err(FolderError::TooLarge {
                path,
                size: metadata.len(),
                limit: MAX_FILE_BYTES,
            });
        }
        let contents =
            fs::read_to_string(&path).map_err(|cause| text_error("read", &path, cause))?;
        files.push(CatalogFile {
            name: name.to_owned(),
            contents,
        });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

/// A read that failed, where invalid UTF-8 is said as such.
fn text_error(action: &'static str, path: &Path, cause: io::Error) -> FolderError {
    if cause.kind() == io::ErrorKind::InvalidData {
        FolderError::NotText {
            path: path.to_owned(),
        }
    } else {
        io_error(action, path, cause)
    }
}

fn io_error(action: &'static str, path: &Path, cause: io::Error) -> FolderError {
    FolderError::Io {
        action,
        path: path.to_owned(),
        cause,
    }
}
