//! Where clip and snapshot files live: the media store ([`MediaStore`], through `object_store`:
//! a local directory by default, an S3-compatible bucket in production), the staging files of
//! uploads in progress ([`staging`]), and HTTP byte ranges ([`range`]).
//!
//! Layout: `clips/{device}/{clip_id}.mp4`, `snapshots/{device}/{snapshot_id}.jpg`. An object is
//! written whole from a verified staging file (an S3 multipart upload for large files; on local
//! disk a temporary file renamed into place, then fsynced), so a reader never sees a partial one;
//! writing it again is harmless, which makes completion retryable. Reads stream a byte range and
//! never load a whole file in memory.

pub mod range;
pub mod staging;

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{GetOptions, GetRange, ObjectStore};
use protocol::DeviceId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

pub use range::{ByteRange, RangeError};
pub use staging::Staging;

/// Removes staging files no upload needs any more: those of uploads already complete (a stop
/// between storing the file and removing its staging copy) and those the database does not know.
/// Incomplete uploads keep theirs, however old: their Pi resumes them when it is back. Run before
/// the API starts serving. Returns how many files were removed.
pub fn sweep_staging(
    staging: &Staging,
    store: &crate::store::Store,
) -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
    let mut removed = 0;
    for id in staging.ids()? {
        let needed = store.get_upload(id)?.is_some_and(|u| !u.complete);
        if !needed {
            staging.remove(id)?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// What went wrong with the media store.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The `media_url` setting cannot be used.
    #[error("media_url (VIGIE_MEDIA_URL): {0}")]
    Config(String),
    /// The object is not in the store (deleted, or never written).
    #[error("the media file {0} is not in the media store")]
    Missing(String),
    /// The store (disk, bucket) failed.
    #[error("the media store failed on {path}: {message}")]
    Store { path: String, message: String },
    /// A staging file failed (disk full, permissions).
    #[error("the upload staging file {path} failed: {source}")]
    Staging {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn store_error(path: &Path, e: object_store::Error) -> MediaError {
    match e {
        object_store::Error::NotFound { .. } => MediaError::Missing(path.to_string()),
        other => MediaError::Store {
            path: path.to_string(),
            message: other.to_string(),
        },
    }
}

/// The object key of a clip.
pub fn clip_key(device: &DeviceId, clip: Uuid) -> Path {
    Path::from(format!("clips/{device}/{}.mp4", clip.as_hyphenated()))
}

/// The object key of a snapshot.
pub fn snapshot_key(device: &DeviceId, snapshot: Uuid) -> Path {
    Path::from(format!(
        "snapshots/{device}/{}.jpg",
        snapshot.as_hyphenated()
    ))
}

/// The media store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct MediaStore {
    store: Arc<dyn ObjectStore>,
    /// On local disk: the directory, for fsyncing what was written.
    local_root: Option<PathBuf>,
}

impl MediaStore {
    /// `None` or `file:///dir`: a local directory (`None`: `data_dir/media`); `s3://bucket[/prefix]`:
    /// an S3-compatible bucket with the standard `AWS_*` environment (credentials, region,
    /// `AWS_ENDPOINT_URL` for a MinIO-like store, `AWS_ALLOW_HTTP=true` for plain HTTP).
    pub fn open(media_url: Option<&str>, data_dir: &FsPath) -> Result<MediaStore, MediaError> {
        match media_url {
            None => MediaStore::local(&data_dir.join("media")),
            Some(url) if url.starts_with("file://") => {
                let dir = &url["file://".len()..];
                if !dir.starts_with('/') {
                    return Err(MediaError::Config(format!(
                        "{url:?} must be file:///absolute/path"
                    )));
                }
                MediaStore::local(FsPath::new(dir))
            }
            Some(url) if url.starts_with("s3://") => {
                let rest = &url["s3://".len()..];
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(MediaError::Config(format!(
                        "{url:?} names no bucket: expected s3://bucket[/prefix]"
                    )));
                }
                let s3 = AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .build()
                    .map_err(|e| MediaError::Config(format!("cannot use {url:?}: {e}")))?;
                let prefix = prefix.trim_matches('/');
                let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
                    Arc::new(s3)
                } else {
                    Arc::new(PrefixStore::new(s3, prefix))
                };
                Ok(MediaStore {
                    store,
                    local_root: None,
                })
            }
            Some(other) => Err(MediaError::Config(format!(
                "{other:?} is not supported: use s3://bucket[/prefix] or file:///path, or leave it \
                 unset for DATA_DIR/media"
            ))),
        }
    }

    fn local(dir: &FsPath) -> Result<MediaStore, MediaError> {
        crate::files::private_dir(dir).map_err(|e| {
            MediaError::Config(format!(
                "cannot create the media directory {}: {e}",
                dir.display()
            ))
        })?;
        let store = LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| MediaError::Config(format!("cannot use {}: {e}", dir.display())))?;
        Ok(MediaStore {
            store: Arc::new(store),
            local_root: Some(dir.to_owned()),
        })
    }

    /// Writes the file at `source` (already verified) as the object `key`, replacing any earlier
    /// copy whole.
    pub async fn put_file(&self, key: &Path, source: &FsPath) -> Result<(), MediaError> {
        let staging_error = |source_err| MediaError::Staging {
            path: source.to_owned(),
            source: source_err,
        };
        let mut file = tokio::fs::File::open(source).await.map_err(staging_error)?;
        let mut writer = BufWriter::new(self.store.clone(), key.clone());
        let mut buffer = vec![0_u8; 256 * 1024];
        loop {
            let n = file.read(&mut buffer).await.map_err(staging_error)?;
            if n == 0 {
                break;
            }
            writer
                .write_all(&buffer[..n])
                .await
                .map_err(|e| MediaError::Store {
                    path: key.to_string(),
                    message: e.to_string(),
                })?;
        }
        writer.shutdown().await.map_err(|e| MediaError::Store {
            path: key.to_string(),
            message: e.to_string(),
        })?;
        if let Some(root) = &self.local_root {
            let written = root.join(key.as_ref());
            let sync = move || -> std::io::Result<()> {
                std::fs::File::open(&written)?.sync_all()?;
                if let Some(dir) = written.parent() {
                    std::fs::File::open(dir)?.sync_all()?;
                }
                Ok(())
            };
            tokio::task::spawn_blocking(sync)
                .await
                .map_err(|e| MediaError::Store {
                    path: key.to_string(),
                    message: e.to_string(),
                })?
                .map_err(|e| MediaError::Store {
                    path: key.to_string(),
                    message: format!("cannot fsync: {e}"),
                })?;
        }
        Ok(())
    }

    /// Streams the bytes `range` of the object `key`.
    pub async fn read_range(
        &self,
        key: &Path,
        range: std::ops::Range<u64>,
    ) -> Result<BoxStream<'static, Result<Bytes, MediaError>>, MediaError> {
        let options = GetOptions {
            range: Some(GetRange::Bounded(range)),
            ..GetOptions::default()
        };
        let result = self
            .store
            .get_opts(key, options)
            .await
            .map_err(|e| store_error(key, e))?;
        let path = key.clone();
        Ok(result
            .into_stream()
            .map(move |chunk| chunk.map_err(|e| store_error(&path, e)))
            .boxed())
    }

    /// Removes the object; one already gone is not an error.
    pub async fn delete(&self, key: &Path) -> Result<(), MediaError> {
        match self.store.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_error(key, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_urls_name_a_directory_or_a_bucket_and_others_are_refused_with_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let default = MediaStore::open(None, dir.path()).unwrap();
        assert_eq!(default.local_root, Some(dir.path().join("media")));
        let url = format!("file://{}", dir.path().join("elsewhere").display());
        let file = MediaStore::open(Some(&url), dir.path()).unwrap();
        assert_eq!(file.local_root, Some(dir.path().join("elsewhere")));
        // Building an S3 client does not connect.
        let s3 = MediaStore::open(Some("s3://vigie-media/site-a"), dir.path()).unwrap();
        assert!(s3.local_root.is_none());
        for bad in ["s3://", "file://relative", "ftp://host/x"] {
            let err = MediaStore::open(Some(bad), dir.path())
                .unwrap_err()
                .to_string();
            assert!(err.contains("VIGIE_MEDIA_URL"), "{bad}: {err}");
        }
    }

    #[test]
    fn objects_are_laid_out_by_kind_and_device() {
        let device = DeviceId::new("pi-1").unwrap();
        let id = Uuid::nil();
        assert_eq!(
            clip_key(&device, id).as_ref(),
            "clips/pi-1/00000000-0000-0000-0000-000000000000.mp4"
        );
        assert_eq!(
            snapshot_key(&device, id).as_ref(),
            "snapshots/pi-1/00000000-0000-0000-0000-000000000000.jpg"
        );
    }
}
