//! What makes a backfill resumable: a file beside `--out` (`<out>.progress`) that records,
//! one JSON line each, the run's arguments and spans, what discovery found, and every task
//! done with its points. Run again with the same arguments, the backfill reads it, skips
//! the tasks done and writes the output from all the points once: a point is never fetched
//! or written twice. Each line is written whole and synced before the next task begins; a
//! line cut short by a crash is dropped, and its task is done again.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::history::{Discovery, Skipped, Span};

const VERSION: u32 = 1;

/// The first line: what the run is, so a file of another run is never continued.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub version: u32,
    /// The arguments and sources that decide the tasks, as one string.
    pub arguments: String,
    /// Each source's span, fixed by the first run (with `--until-live`, the live edge).
    pub spans: BTreeMap<String, Span>,
    /// Each source's target labels (job, instance, ...).
    pub targets: BTreeMap<String, Vec<(String, String)>>,
}

impl Header {
    pub fn new(
        arguments: String,
        spans: BTreeMap<String, Span>,
        targets: BTreeMap<String, Vec<(String, String)>>,
    ) -> Self {
        Header {
            version: VERSION,
            arguments,
            spans,
            targets,
        }
    }
}

/// One task's points: (family, label values after pool and source, time, value).
pub type Points = Vec<(String, Vec<String>, i64, f64)>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
enum Record {
    Discovered {
        source: String,
        discovery: Discovery,
    },
    Done {
        source: String,
        task: String,
        requests: u64,
        skipped: Skipped,
        points: Points,
    },
}

/// A task done, as the file keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Done {
    pub requests: u64,
    pub skipped: Skipped,
    pub points: Points,
}

/// What an earlier run of the same arguments did.
#[derive(Debug, Default)]
pub struct Resumed {
    pub discovered: BTreeMap<String, Discovery>,
    /// By (source, task id), in the order they were done.
    pub done: BTreeMap<(String, String), Done>,
}

#[derive(Debug)]
pub struct ProgressFile {
    path: PathBuf,
    file: File,
}

/// The progress file of the output `out`.
pub fn path_for(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".progress");
    out.with_file_name(name)
}

/// The file is its owner's alone: it holds what the pools answered.
fn private(file: &File) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

impl ProgressFile {
    /// The earlier run recorded at `path`, if it had these `arguments`: its header, what it
    /// did, and the file open to go on.
    pub fn resume(
        path: &Path,
        arguments: &str,
    ) -> std::io::Result<Option<(ProgressFile, Header, Resumed)>> {
        let file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        // An earlier version made it readable by all.
        private(&file)?;
        let mut reader = BufReader::new(file);
        let mut line = String::new();
        let mut good_until: u64 = 0;
        let header: Header = match reader.read_line(&mut line) {
            Ok(n) if line.ends_with('\n') => match serde_json::from_str(&line) {
                Ok(h) => {
                    good_until += n as u64;
                    h
                }
                Err(_) => return Ok(None),
            },
            _ => return Ok(None),
        };
        if header.version != VERSION || header.arguments != arguments {
            return Ok(None);
        }
        let mut resumed = Resumed::default();
        loop {
            line.clear();
            let n = reader.read_line(&mut line)?;
            // A line without its end was being written when the run stopped.
            if n == 0 || !line.ends_with('\n') {
                break;
            }
            match serde_json::from_str::<Record>(&line) {
                Ok(Record::Discovered { source, discovery }) => {
                    resumed.discovered.insert(source, discovery);
                }
                Ok(Record::Done {
                    source,
                    task,
                    requests,
                    skipped,
                    points,
                }) => {
                    resumed.done.insert(
                        (source, task),
                        Done {
                            requests,
                            skipped,
                            points,
                        },
                    );
                }
                Err(_) => break,
            }
            good_until += n as u64;
        }
        let mut file = reader.into_inner();
        file.set_len(good_until)?;
        file.seek(SeekFrom::End(0))?;
        Ok(Some((
            ProgressFile {
                path: path.to_path_buf(),
                file,
            },
            header,
            resumed,
        )))
    }

    /// A new file at `path` for the run `header` describes, replacing any other.
    pub fn start(path: &Path, header: &Header) -> std::io::Result<ProgressFile> {
        let file = crate::state_file::private_file()
            .write(true)
            .truncate(true)
            .open(path)?;
        private(&file)?;
        let mut progress = ProgressFile {
            path: path.to_path_buf(),
            file,
        };
        progress.append(&serde_json::to_string(header).map_err(std::io::Error::other)?)?;
        Ok(progress)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn append(&mut self, json: &str) -> std::io::Result<()> {
        let mut line = String::with_capacity(json.len() + 1);
        line.push_str(json);
        line.push('\n');
        self.file.write_all(line.as_bytes())?;
        self.file.sync_data()
    }

    pub fn discovered(&mut self, source: &str, discovery: &Discovery) -> std::io::Result<()> {
        let record = Record::Discovered {
            source: source.to_string(),
            discovery: discovery.clone(),
        };
        self.append(&serde_json::to_string(&record).map_err(std::io::Error::other)?)
    }

    pub fn done(&mut self, source: &str, task: &str, done: &Done) -> std::io::Result<()> {
        let record = Record::Done {
            source: source.to_string(),
            task: task.to_string(),
            requests: done.requests,
            skipped: done.skipped.clone(),
            points: done.points.clone(),
        };
        self.append(&serde_json::to_string(&record).map_err(std::io::Error::other)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(arguments: &str) -> Header {
        Header::new(
            arguments.to_string(),
            BTreeMap::from([(
                "s".to_string(),
                Span {
                    from: 0,
                    until: 10,
                    now: 20,
                },
            )]),
            BTreeMap::new(),
        )
    }

    #[test]
    fn a_run_goes_on_from_its_last_whole_line_and_another_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.om.progress");
        let mut file = ProgressFile::start(&path, &header("a")).unwrap();
        let done = Done {
            requests: 1,
            skipped: Skipped::default(),
            points: vec![(
                "mining_workers".into(),
                vec!["x".into(), "active".into()],
                5,
                2.0,
            )],
        };
        file.done("s", "t1", &done).unwrap();
        drop(file);
        // A crash in the middle of the next line.
        let mut raw = OpenOptions::new().append(true).open(&path).unwrap();
        raw.write_all(br#"{"record":"done","source":"s","ta"#)
            .unwrap();
        drop(raw);

        let (mut file, got, resumed) = ProgressFile::resume(&path, "a").unwrap().unwrap();
        assert_eq!(got, header("a"));
        assert_eq!(resumed.done.len(), 1);
        assert_eq!(resumed.done[&("s".to_string(), "t1".to_string())], done);
        file.done("s", "t2", &done).unwrap();
        drop(file);
        let (_, _, resumed) = ProgressFile::resume(&path, "a").unwrap().unwrap();
        assert_eq!(
            resumed.done.len(),
            2,
            "the cut line is gone, the new one whole"
        );
        assert!(ProgressFile::resume(&path, "b").unwrap().is_none());
    }
}
