//! The file position store: `<dir>/<connector>.json`, replaced atomically (write, fsync,
//! rename, fsync the directory), so a crash leaves the old or the new position, never half.

use std::path::PathBuf;

use super::{now_ms, StoredPosition};
use crate::error::{Error, Result};
use crate::event::Position;

pub struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn path(&self, connector: &str) -> PathBuf {
        self.dir.join(format!("{connector}.json"))
    }

    pub async fn load(&self, connector: &str) -> Result<Option<Position>> {
        let path = self.path(connector);
        match tokio::fs::read(&path).await {
            Ok(bytes) => {
                let stored: StoredPosition = serde_json::from_slice(&bytes).map_err(|e| {
                    Error::definite(format!(
                        "position file {} is corrupt; fix or delete it (deleting resumes from the slot's position)",
                        path.display()
                    ))
                    .with_source(e)
                })?;
                Ok(Some(stored.position))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::definite(format!("reading {}", path.display())).with_source(e)),
        }
    }

    pub async fn commit(&self, connector: &str, position: &Position) -> Result<()> {
        let dir = self.dir.clone();
        let path = self.path(connector);
        let stored = StoredPosition {
            connector: connector.to_string(),
            position: position.clone(),
            committed_at_ms: now_ms(),
        };
        let bytes = serde_json::to_vec_pretty(&stored)
            .map_err(|e| Error::definite("encoding a position").with_source(e))?;
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            use std::io::Write;
            std::fs::create_dir_all(&dir)?;
            let tmp = path.with_extension("json.tmp");
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            std::fs::File::open(&dir)?.sync_all()?;
            Ok(())
        })
        .await
        .map_err(|e| Error::transient("committing a position").with_source(e))?
        .map_err(|e| {
            Error::transient(format!(
                "writing the position file in {}",
                self.dir.display()
            ))
            .with_source(e)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn commit_then_load() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("positions"));
        assert_eq!(store.load("demo").await.unwrap(), None);
        let p = Position(serde_json::json!({"lsn": "0/10"}));
        store.commit("demo", &p).await.unwrap();
        assert_eq!(store.load("demo").await.unwrap(), Some(p.clone()));
        let p2 = Position(serde_json::json!({"lsn": "0/20"}));
        store.commit("demo", &p2).await.unwrap();
        assert_eq!(store.load("demo").await.unwrap(), Some(p2));
    }

    #[tokio::test]
    async fn corrupt_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("demo.json"), b"{not json").unwrap();
        let store = FileStore::new(dir.path().to_path_buf());
        let err = store.load("demo").await.unwrap_err().to_string();
        assert!(err.contains("demo.json"), "{err}");
    }
}
