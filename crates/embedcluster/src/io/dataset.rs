//! Datasets: the Parquet part files of a directory (as Spark, Databricks, pyarrow and
//! Dask write them), of a glob, or of several paths, read as one table.
//!
//! Resolution rules (those of pyarrow's dataset discovery and Spark's reader):
//! - a directory is walked recursively in sorted path order; hidden entries (`.x`),
//!   `_`-prefixed entries (`_SUCCESS`, `_metadata`, `_temporary/`) and `.crc` files are
//!   ignored, and so is any file not named `*.parquet` / `*.pq`;
//! - a folder named `key=value` is a Hive partition: `key` becomes a column of every row
//!   below it (value percent-decoded; `__HIVE_DEFAULT_PARTITION__` is null); every part
//!   must sit under the same keys, in the same order;
//! - a path that does not exist and holds `*`, `?` or `[` is a glob (`glob` crate syntax,
//!   `**` for any depth); its matches are taken in sorted order;
//! - several inputs are concatenated in the order given.
//!
//! Row ids are global: part `i` starts where part `i - 1` ends.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// One Parquet file of a dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartFile {
    /// Where to read it.
    pub path: PathBuf,
    /// Its name relative to the input it came from (a directory: the path below it; a file
    /// or a glob match: the file name), which per-part outputs reuse.
    pub name: PathBuf,
    /// Hive partition values from its `key=value` folders, in the order of the keys.
    pub partition: Vec<Option<String>>,
}

/// The files of one or more inputs.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// How the dataset is named in reports: the input, or the inputs joined by spaces.
    pub display: PathBuf,
    /// Its part files, in row order.
    pub parts: Vec<PartFile>,
    /// Hive partition keys (empty when there are none).
    pub keys: Vec<String>,
    /// True when the inputs are a single file given by its path (not a directory, glob or
    /// list): read as that file, whatever its format.
    pub single_file: bool,
}

fn has_glob_chars(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

fn ignored(name: &str) -> bool {
    name.starts_with('.') || name.starts_with('_') || name.ends_with(".crc")
}

fn is_parquet_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".parquet") || lower.ends_with(".pq")
}

/// Percent-decoding of a Hive partition value (Spark escapes `/`, `=`, `%`, ... as `%XX`).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `(key, value)` of a `key=value` folder name.
fn partition_of(name: &str) -> Option<(String, Option<String>)> {
    let (k, v) = name.split_once('=')?;
    if k.is_empty() {
        return None;
    }
    let v = if v == "__HIVE_DEFAULT_PARTITION__" {
        None
    } else {
        Some(percent_decode(v))
    };
    Some((percent_decode(k), v))
}

struct Found {
    path: PathBuf,
    name: PathBuf,
    keys: Vec<(String, Option<String>)>,
}

fn walk(
    root: &Path,
    dir: &Path,
    keys: &[(String, Option<String>)],
    out: &mut Vec<Found>,
) -> Result<()> {
    let mut entries: Vec<(String, PathBuf, bool)> = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let e = e.map_err(|e| Error::io(dir, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if ignored(&name) {
            continue;
        }
        let path = e.path();
        // follows symbolic links, as the readers do
        let is_dir = path.is_dir();
        entries.push((name, path, is_dir));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, path, is_dir) in entries {
        if is_dir {
            let mut below = keys.to_vec();
            if let Some(kv) = partition_of(&name) {
                below.push(kv);
            }
            walk(root, &path, &below, out)?;
        } else if is_parquet_name(&name) {
            let rel = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
            out.push(Found {
                path,
                name: rel,
                keys: keys.to_vec(),
            });
        }
    }
    Ok(())
}

/// Resolves `inputs` (files, directories, globs) into part files.
///
/// # Errors
/// [`Error::Io`] for a path that does not exist (and is not a glob) or cannot be listed;
/// [`Error::Format`] for a directory or glob with no Parquet file, and for parts under
/// different partition keys (naming the first part that differs);
/// [`Error::Parameter`] for no input at all.
pub fn resolve(inputs: &[PathBuf]) -> Result<Resolved> {
    if inputs.is_empty() {
        return Err(Error::param_msg("input", "no input path given"));
    }
    let mut found: Vec<Found> = Vec::new();
    let mut single_file = inputs.len() == 1;
    for input in inputs {
        let s = input.to_string_lossy();
        if super::remote::is_url(input) {
            let before = found.len();
            let objects = resolve_url(input, &mut found)?;
            if objects > 1 || found.len() != before + 1 || found[before].path != *input {
                single_file = false;
            }
            if found.len() == before {
                return Err(Error::format(
                    input,
                    "no Parquet objects under this prefix (*.parquet, *.pq; hidden, `_` and .crc objects are ignored)",
                ));
            }
        } else if input.is_dir() {
            single_file = false;
            let before = found.len();
            walk(input, input, &[], &mut found)?;
            if found.len() == before {
                return Err(Error::format(
                    input,
                    "the directory holds no Parquet files (*.parquet, *.pq; hidden, `_` and .crc files are ignored)",
                ));
            }
        } else if input.exists() {
            found.push(Found {
                path: input.clone(),
                name: input
                    .file_name()
                    .map(PathBuf::from)
                    .unwrap_or_else(|| input.clone()),
                keys: Vec::new(),
            });
        } else if has_glob_chars(&s) {
            single_file = false;
            let matches = glob::glob(&s).map_err(|e| {
                Error::param_msg("input", format!("{s:?} is not a valid glob pattern: {e}"))
            })?;
            let mut paths = Vec::new();
            for m in matches {
                let p = m.map_err(|e| {
                    let path = e.path().to_path_buf();
                    Error::io(path, e.into())
                })?;
                paths.push(p);
            }
            paths.sort();
            let before = found.len();
            for p in paths {
                let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
                if p.is_dir() {
                    walk(&p, &p, &[], &mut found)?;
                } else if name.as_deref().is_some_and(|n| !ignored(n)) {
                    found.push(Found {
                        name: PathBuf::from(name.unwrap_or_default()),
                        path: p,
                        keys: Vec::new(),
                    });
                }
            }
            if found.len() == before {
                return Err(Error::format(input, "the glob matches no files"));
            }
        } else {
            return Err(Error::io(
                input,
                std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory"),
            ));
        }
    }
    let keys: Vec<String> = found[0].keys.iter().map(|(k, _)| k.clone()).collect();
    for f in &found {
        let these: Vec<&str> = f.keys.iter().map(|(k, _)| k.as_str()).collect();
        if these != keys.iter().map(String::as_str).collect::<Vec<_>>() {
            return Err(Error::format(
                &f.path,
                format!(
                    "partition folders differ: this file is under keys [{}], the first part ({}) under [{}]",
                    these.join(", "),
                    found[0].path.display(),
                    keys.join(", ")
                ),
            ));
        }
    }
    if let Some(dup) = first_duplicate(&keys) {
        return Err(Error::format(
            &found[0].path,
            format!("partition key `{dup}` appears twice in the folder names"),
        ));
    }
    let display = PathBuf::from(display(inputs));
    Ok(Resolved {
        display,
        parts: found
            .into_iter()
            .map(|f| PartFile {
                path: f.path,
                name: f.name,
                partition: f.keys.into_iter().map(|(_, v)| v).collect(),
            })
            .collect(),
        keys,
        single_file,
    })
}

/// The parts named by an object-store URL, appended to `found`: the object itself, the
/// objects below the prefix `url/` with the rules of a directory (folders are the key's
/// `/`-separated segments), or, when the key holds glob characters, the objects that match
/// it (`*` within a segment, `**` across segments). Returns how many objects were listed.
fn resolve_url(url: &Path, found: &mut Vec<Found>) -> Result<usize> {
    let s = url.to_string_lossy().into_owned();
    let scheme_end = s.find("://").map(|i| i + 3).unwrap_or(0);
    let glob_at = s[scheme_end..]
        .find(['*', '?', '['])
        .map(|i| i + scheme_end);
    let (listed_url, pattern) = match glob_at {
        None => (s.clone(), None),
        Some(i) => {
            let cut = s[..i]
                .rfind('/')
                .filter(|&c| c >= scheme_end)
                .unwrap_or(s.len());
            let pattern = glob::Pattern::new(&s).map_err(|e| {
                Error::param_msg("input", format!("{s:?} is not a valid glob pattern: {e}"))
            })?;
            (s[..cut].to_string(), Some(pattern))
        }
    };
    let objects = match super::remote::lookup(Path::new(&listed_url))? {
        super::remote::Listing::Object => {
            let name = s.rsplit('/').next().unwrap_or(&s).to_string();
            found.push(Found {
                path: url.to_path_buf(),
                name: PathBuf::from(name),
                keys: Vec::new(),
            });
            return Ok(1);
        }
        super::remote::Listing::Prefix(objects) => objects,
    };
    let n = objects.len();
    let mut parts: Vec<(Vec<String>, String)> = Vec::new();
    for (rel, full) in objects {
        let segments: Vec<String> = rel.split('/').map(str::to_string).collect();
        if segments.iter().any(|seg| seg.is_empty() || ignored(seg)) {
            continue;
        }
        let file = segments.last().expect("split gives one segment");
        match &pattern {
            Some(p) => {
                let options = glob::MatchOptions {
                    require_literal_separator: true,
                    ..Default::default()
                };
                if !p.matches_with(&full, options) {
                    continue;
                }
            }
            None if !is_parquet_name(file) => continue,
            None => {}
        }
        parts.push((segments, full));
    }
    // the order of a recursive walk that sorts each folder's entries by name
    parts.sort();
    for (segments, full) in parts {
        let (file, folders) = segments.split_last().expect("one segment at least");
        let keys = match pattern {
            Some(_) => Vec::new(),
            None => folders.iter().filter_map(|f| partition_of(f)).collect(),
        };
        found.push(Found {
            path: PathBuf::from(&full),
            name: match pattern {
                Some(_) => PathBuf::from(file),
                None => PathBuf::from(segments.join("/")),
            },
            keys,
        });
    }
    Ok(n)
}

/// How inputs are named in reports: the paths joined by spaces.
pub fn display(inputs: &[PathBuf]) -> String {
    inputs
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

fn first_duplicate(keys: &[String]) -> Option<&str> {
    keys.iter()
        .enumerate()
        .find(|(i, k)| keys[..*i].contains(k))
        .map(|(_, k)| k.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"x").unwrap();
    }

    #[test]
    fn a_spark_directory_is_its_sorted_parquet_parts() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("out");
        for n in [
            "part-00001.snappy.parquet",
            "part-00000.snappy.parquet",
            "_SUCCESS",
            ".part-00000.snappy.parquet.crc",
            "notes.txt",
            "_temporary/0/part-9.parquet",
        ] {
            touch(&root.join(n));
        }
        let r = resolve(std::slice::from_ref(&root)).unwrap();
        let names: Vec<_> = r.parts.iter().map(|p| p.name.clone()).collect();
        assert_eq!(
            names,
            [
                PathBuf::from("part-00000.snappy.parquet"),
                PathBuf::from("part-00001.snappy.parquet")
            ]
        );
        assert!(!r.single_file);
        assert!(r.keys.is_empty());
    }

    #[test]
    fn hive_folders_become_keys_with_decoded_values() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("ds");
        touch(&root.join("lang=en/year=2024/a.parquet"));
        touch(&root.join("lang=a%2Fb/year=2023/b.parquet"));
        touch(&root.join("lang=__HIVE_DEFAULT_PARTITION__/year=1/c.parquet"));
        let r = resolve(std::slice::from_ref(&root)).unwrap();
        assert_eq!(r.keys, ["lang", "year"]);
        let vals: Vec<_> = r.parts.iter().map(|p| p.partition.clone()).collect();
        assert_eq!(
            vals,
            [
                vec![None, Some("1".to_string())],
                vec![Some("a/b".to_string()), Some("2023".to_string())],
                vec![Some("en".to_string()), Some("2024".to_string())],
            ]
        );
        assert_eq!(
            r.parts[2].name,
            PathBuf::from("lang=en/year=2024/a.parquet")
        );
    }

    #[test]
    fn parts_under_different_keys_are_an_error_naming_the_file() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("ds");
        touch(&root.join("a=1/x.parquet"));
        touch(&root.join("b=1/y.parquet"));
        let e = resolve(std::slice::from_ref(&root))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("y.parquet") && e.contains("partition folders differ"),
            "{e}"
        );
    }

    #[test]
    fn globs_lists_and_missing_paths() {
        let d = tempfile::tempdir().unwrap();
        touch(&d.path().join("b.parquet"));
        touch(&d.path().join("a.parquet"));
        let pat = d.path().join("*.parquet");
        let r = resolve(std::slice::from_ref(&pat)).unwrap();
        assert_eq!(r.parts.len(), 2);
        assert!(r.parts[0].path.ends_with("a.parquet"));
        let both = [d.path().join("b.parquet"), d.path().join("a.parquet")];
        let r = resolve(&both).unwrap();
        assert!(r.parts[0].path.ends_with("b.parquet") && !r.single_file);
        let one = resolve(&both[..1]).unwrap();
        assert!(one.single_file);
        let e = resolve(&[d.path().join("nope.parquet")]).unwrap_err();
        assert!(matches!(e, Error::Io { .. }));
        let e = resolve(&[d.path().join("*.npz")]).unwrap_err().to_string();
        assert!(e.contains("matches no files"), "{e}");
        let empty = d.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        let e = resolve(&[empty]).unwrap_err().to_string();
        assert!(e.contains("holds no Parquet files"), "{e}");
    }
}
