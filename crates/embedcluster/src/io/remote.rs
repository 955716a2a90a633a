//! Object storage: `s3://` (and `s3a://`), `gs://`, `az://` (and `abfs(s)://`), and
//! `http(s)://` read-only, through the `object_store` crate.
//!
//! A Parquet object is read as a local file is, through the parquet crate's
//! [`ChunkReader`]: the footer first (two range requests: the 8-byte tail, then the
//! metadata), then the embedding column's pages by range requests. Each open reader keeps
//! one window of the object in memory and, while it reads forward, fetches the next window
//! in the background (a bounded prefetch of one window), so a reader holds at most
//! `2 * WINDOW_BYTES` (16 MiB) besides what the decoder holds; the plan counts that per
//! decoder thread.
//!
//! Configuration comes from the standard environment, as `object_store`'s `from_env`
//! builders read it, handed in by the front end ([`set_storage_settings`]; the core reads
//! no environment itself): for S3, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL` (MinIO, a local server),
//! `AWS_ALLOW_HTTP=true` for a plain-http endpoint, `AWS_SKIP_SIGNATURE=true` for a public
//! bucket, web-identity and container credentials; when neither `AWS_ACCESS_KEY_ID` nor
//! another credential source is set, the `[default]` (or `AWS_PROFILE`) section of
//! `~/.aws/credentials` and the region of `~/.aws/config` are used. For GCS,
//! `GOOGLE_SERVICE_ACCOUNT` / `GOOGLE_APPLICATION_CREDENTIALS`; for Azure,
//! `AZURE_STORAGE_ACCOUNT_NAME` with `AZURE_STORAGE_ACCOUNT_KEY` or a token.
//!
//! Outputs to object storage are written to a local temporary file first and uploaded
//! with a multipart upload completed last ([`upload`]), so a failed job leaves no object.

use crate::error::{Error, Result};
use bytes::Bytes;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::file::reader::{ChunkReader, Length};
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

/// Bytes fetched per range request while reading forward (and prefetched ahead).
pub const WINDOW_BYTES: u64 = 8 << 20;

const SCHEMES: [&str; 9] = [
    "s3", "s3a", "gs", "az", "abfs", "abfss", "azure", "http", "https",
];

fn scheme_of(s: &str) -> Option<&'static str> {
    SCHEMES.into_iter().find(|sch| {
        s.len() > sch.len() + 3 && s.starts_with(sch) && s[sch.len()..].starts_with("://")
    })
}

/// True when `path` is an object-storage URL (`s3://...`, `gs://...`, ...).
pub fn is_url(path: &Path) -> bool {
    path.to_str().and_then(scheme_of).is_some()
}

/// One tokio runtime for all object-store calls, driven from our own (synchronous)
/// threads with `block_on`; its two worker threads run the HTTP connections.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("embedcluster-io")
            .enable_all()
            .build()
            .expect("the object-store runtime starts (threads and an epoll instance)")
    })
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    runtime().block_on(f)
}

/// An object-store error as the I/O error of `url`: not found, permission denied (also for
/// missing or rejected credentials), or other, with object_store's message.
fn io_error(url: &str, e: object_store::Error) -> Error {
    use std::io::ErrorKind;
    let kind = match &e {
        object_store::Error::NotFound { .. } => ErrorKind::NotFound,
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => ErrorKind::PermissionDenied,
        _ => ErrorKind::Other,
    };
    let full = e.to_string();
    // S3-compatible servers name the failure in an XML <Code>; say it first, plainly
    let code = full
        .split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map(|(c, _)| c.to_string());
    let (kind, message) = match code.as_deref() {
        Some("NoSuchBucket") => (ErrorKind::NotFound, format!("no such bucket ({full})")),
        Some(c @ ("AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "ExpiredToken")) => (
            ErrorKind::PermissionDenied,
            format!("access denied ({c}): check the credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE) ({full})"),
        ),
        _ if full.contains("169.254.169.254") => (
            ErrorKind::PermissionDenied,
            format!("no credentials: none in the environment (AWS_ACCESS_KEY_ID, AWS_PROFILE) or ~/.aws/credentials, and the instance metadata service did not give any ({full})"),
        ),
        _ => (kind, full),
    };
    Error::io(url, std::io::Error::new(kind, message))
}

/// `scheme://authority` and the key of `url`.
fn split(url: &str) -> Result<(&'static str, String, String)> {
    let scheme = scheme_of(url)
        .ok_or_else(|| Error::param_msg("input", format!("{url:?} is not an object-store URL")))?;
    let rest = &url[scheme.len() + 3..];
    let (authority, key) = rest.split_once('/').unwrap_or((rest, ""));
    if authority.is_empty() {
        return Err(Error::param_msg(
            "input",
            format!("{url:?} names no bucket (expected {scheme}://BUCKET/KEY)"),
        ));
    }
    Ok((scheme, format!("{scheme}://{authority}"), key.to_string()))
}

/// The `[section]` of an INI file (`~/.aws/credentials`, `~/.aws/config`) as lower-case keys.
fn ini_section(text: &str, section: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') && line.ends_with(']') {
            inside = line[1..line.len() - 1].trim() == section;
        } else if inside {
            if let Some((k, v)) = line.split_once('=') {
                out.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
    }
    out
}

/// Where the object-store settings come from: a function of the front end that returns
/// the `AWS_*`, `GOOGLE_*` and `AZURE_*` variables and `HOME` (the core reads no
/// environment itself; the CLI and the Python module install one that reads the process's).
pub type StorageSettings = fn() -> Vec<(String, String)>;

static SETTINGS: OnceLock<StorageSettings> = OnceLock::new();

/// Installs the front end's [`StorageSettings`] (once per process; later calls are
/// ignored). Without one, stores are configured from nothing: anonymous access only.
pub fn set_storage_settings(f: StorageSettings) {
    let _ = SETTINGS.set(f);
}

/// The variables object storage reads, out of all of a process's (which a front end
/// reads): `AWS_*`, `GOOGLE_*`, `AZURE_*` and `HOME`.
pub fn storage_variables(all: impl Iterator<Item = (String, String)>) -> Vec<(String, String)> {
    all.filter(|(k, _)| {
        k.starts_with("AWS_") || k.starts_with("GOOGLE_") || k.starts_with("AZURE_") || k == "HOME"
    })
    .collect()
}

fn settings() -> HashMap<String, String> {
    SETTINGS
        .get()
        .map(|f| f())
        .unwrap_or_default()
        .into_iter()
        .collect()
}

/// The configuration keys of `settings` under `prefix`, parsed as `K` (object_store's
/// names: `aws_endpoint_url`, `google_service_account`, `azure_storage_account_key`, ...),
/// as its `from_env` builders would read them.
fn keys<K: std::str::FromStr>(
    settings: &HashMap<String, String>,
    prefix: &str,
) -> Vec<(K, String)> {
    let mut out: Vec<(String, K, String)> = settings
        .iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .filter_map(|(k, v)| {
            Some((
                k.clone(),
                k.to_ascii_lowercase().parse::<K>().ok()?,
                v.clone(),
            ))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.into_iter().map(|(_, k, v)| (k, v)).collect()
}

fn aws_builder(set: &HashMap<String, String>) -> object_store::aws::AmazonS3Builder {
    use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey as K};
    let mut b = AmazonS3Builder::new();
    for (k, v) in keys::<K>(set, "AWS_") {
        b = b.with_config(k, v);
    }
    let env = |k: &str| set.contains_key(k);
    let has_credentials = env("AWS_ACCESS_KEY_ID")
        || env("AWS_WEB_IDENTITY_TOKEN_FILE")
        || env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        || env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    let home = set.get("HOME").map(std::path::PathBuf::from);
    let profile = set
        .get("AWS_PROFILE")
        .cloned()
        .unwrap_or_else(|| "default".into());
    if !has_credentials {
        let file = set
            .get("AWS_SHARED_CREDENTIALS_FILE")
            .map(std::path::PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws/credentials")));
        if let Some(text) = file.and_then(|f| std::fs::read_to_string(f).ok()) {
            let s = ini_section(&text, &profile);
            if let (Some(id), Some(secret)) =
                (s.get("aws_access_key_id"), s.get("aws_secret_access_key"))
            {
                b = b.with_access_key_id(id).with_secret_access_key(secret);
                if let Some(t) = s.get("aws_session_token") {
                    b = b.with_token(t);
                }
            }
        }
    }
    if !env("AWS_REGION") && !env("AWS_DEFAULT_REGION") {
        let file = set
            .get("AWS_CONFIG_FILE")
            .map(std::path::PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws/config")));
        if let Some(text) = file.and_then(|f| std::fs::read_to_string(f).ok()) {
            let name = if profile == "default" {
                profile.clone()
            } else {
                format!("profile {profile}")
            };
            if let Some(r) = ini_section(&text, &name).get("region") {
                b = b.with_config(K::Region, r);
            }
        }
    } else if let (false, Some(r)) = (env("AWS_REGION"), set.get("AWS_DEFAULT_REGION")) {
        b = b.with_config(K::Region, r);
    }
    b
}

/// The store for `scheme://authority`, built once per process from the environment.
fn store(scheme: &str, base: &str) -> Result<Arc<dyn ObjectStore>> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<dyn ObjectStore>>>> = OnceLock::new();
    let stores = STORES.get_or_init(Default::default);
    if let Some(s) = stores.lock().expect("store cache").get(base) {
        return Ok(s.clone());
    }
    let set = settings();
    let built: object_store::Result<Arc<dyn ObjectStore>> = match scheme {
        "s3" | "s3a" => aws_builder(&set)
            .with_url(base)
            .build()
            .map(|s| Arc::new(s) as Arc<dyn ObjectStore>),
        "gs" => keys::<object_store::gcp::GoogleConfigKey>(&set, "GOOGLE_")
            .into_iter()
            .fold(
                object_store::gcp::GoogleCloudStorageBuilder::new(),
                |b, (k, v)| b.with_config(k, v),
            )
            .with_url(base)
            .build()
            .map(|s| Arc::new(s) as Arc<dyn ObjectStore>),
        "az" | "abfs" | "abfss" | "azure" => {
            keys::<object_store::azure::AzureConfigKey>(&set, "AZURE_")
                .into_iter()
                .fold(
                    object_store::azure::MicrosoftAzureBuilder::new(),
                    |b, (k, v)| b.with_config(k, v),
                )
                .with_url(base)
                .build()
                .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
        }
        _ => object_store::http::HttpBuilder::new()
            .with_url(base)
            .build()
            .map(|s| Arc::new(s) as Arc<dyn ObjectStore>),
    };
    let built = built.map_err(|e| {
        Error::io(
            base,
            std::io::Error::other(format!("cannot configure the object store: {e}")),
        )
    })?;
    stores
        .lock()
        .expect("store cache")
        .insert(base.to_string(), built.clone());
    Ok(built)
}

fn object_path(url: &str, key: &str) -> Result<ObjectPath> {
    ObjectPath::parse(key.trim_end_matches('/'))
        .map_err(|e| Error::param_msg("input", format!("{url:?} is not a valid object key: {e}")))
}

/// Sizes of objects seen in listings and `head` calls, so that reopening a part for a
/// pass costs no request.
fn sizes() -> &'static Mutex<HashMap<String, u64>> {
    static SIZES: OnceLock<Mutex<HashMap<String, u64>>> = OnceLock::new();
    SIZES.get_or_init(Default::default)
}

/// What a URL names: one object, or the objects below it (`url/...`) as
/// `(path relative to url, full url)` in the store's (lexicographic) order.
pub(crate) enum Listing {
    Object,
    Prefix(Vec<(String, String)>),
}

/// Looks `url` up: an object of that key, else the objects whose keys start with `key/`.
///
/// # Errors
/// [`Error::Io`] naming the URL: not found (no such object, prefix or bucket), permission
/// denied (missing or rejected credentials), or the store's message.
pub(crate) fn lookup(url: &Path) -> Result<Listing> {
    let url = url.to_string_lossy().into_owned();
    let (scheme, base, key) = split(&url)?;
    let store = store(scheme, &base)?;
    let key = key.trim_end_matches('/').to_string();
    let head_err = if key.is_empty() {
        None
    } else {
        let location = object_path(&url, &key)?;
        match block_on(store.head(&location)) {
            Ok(meta) => {
                sizes()
                    .lock()
                    .expect("sizes")
                    .insert(url.clone(), meta.size);
                return Ok(Listing::Object);
            }
            Err(e @ object_store::Error::NotFound { .. }) => Some(e),
            Err(e) => return Err(io_error(&url, e)),
        }
    };
    let prefix = if key.is_empty() {
        None
    } else {
        Some(object_path(&url, &key)?)
    };
    let listed: Vec<object_store::ObjectMeta> = block_on(async {
        use futures_util::TryStreamExt;
        store.list(prefix.as_ref()).try_collect().await
    })
    .map_err(|e| io_error(&url, e))?;
    if listed.is_empty() {
        return Err(match head_err {
            Some(e) => io_error(&url, e),
            None => Error::io(
                &url,
                std::io::Error::new(std::io::ErrorKind::NotFound, "the bucket holds no objects"),
            ),
        });
    }
    let mut out = Vec::with_capacity(listed.len());
    let mut sizes = sizes().lock().expect("sizes");
    for m in listed {
        let full = m.location.as_ref();
        let rel = if key.is_empty() {
            full.to_string()
        } else {
            full.strip_prefix(key.as_str())
                .map(|r| r.trim_start_matches('/').to_string())
                .unwrap_or_else(|| full.to_string())
        };
        let object_url = format!("{base}/{full}");
        sizes.insert(object_url.clone(), m.size);
        out.push((rel, object_url));
    }
    Ok(Listing::Prefix(out))
}

/// The size of the object at `url` in bytes (from the listing, else one `head` request).
pub(crate) fn size(url: &Path) -> Result<u64> {
    let s = url.to_string_lossy().into_owned();
    if let Some(&n) = sizes().lock().expect("sizes").get(&s) {
        return Ok(n);
    }
    let (scheme, base, key) = split(&s)?;
    let store = store(scheme, &base)?;
    let location = object_path(&s, &key)?;
    let meta = block_on(store.head(&location)).map_err(|e| io_error(&s, e))?;
    sizes().lock().expect("sizes").insert(s, meta.size);
    Ok(meta.size)
}

/// Checks before any work that the bucket of output `url` exists and we may list it.
///
/// # Errors
/// [`Error::Io`] naming `url`: no such bucket, permission denied, unreachable endpoint.
pub(crate) fn probe(url: &Path) -> Result<()> {
    let s = url.to_string_lossy().into_owned();
    let (scheme, base, key) = split(&s)?;
    if scheme == "http" || scheme == "https" {
        return Err(Error::param_msg(
            "output",
            format!("{s}: http(s) URLs are read-only; write to s3://, gs:// or az://"),
        ));
    }
    let store = store(scheme, &base)?;
    let parent = key
        .trim_end_matches('/')
        .rsplit_once('/')
        .map(|(p, _)| p.to_string());
    let prefix = match parent {
        Some(p) if !p.is_empty() => Some(object_path(&s, &p)?),
        _ => None,
    };
    block_on(async {
        use futures_util::StreamExt;
        let mut listing = store.list(prefix.as_ref());
        match listing.next().await {
            Some(Err(e)) => Err(io_error(&s, e)),
            _ => Ok(()),
        }
    })
}

type Pending = (
    u64,
    u64,
    tokio::task::JoinHandle<object_store::Result<Bytes>>,
);

#[derive(Default)]
struct Window {
    start: u64,
    data: Bytes,
    /// The next window, being fetched: its range and the task.
    ahead: Option<Pending>,
}

struct Inner {
    store: Arc<dyn ObjectStore>,
    location: ObjectPath,
    size: u64,
    window: Mutex<Window>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Ok(w) = self.window.get_mut() {
            if let Some((_, _, task)) = w.ahead.take() {
                task.abort();
            }
        }
    }
}

/// One object opened for reading, as the parquet crate reads files: a [`ChunkReader`]
/// whose requests are served from a window of [`WINDOW_BYTES`] with one window prefetched.
#[derive(Clone)]
pub(crate) struct RemoteFile {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RemoteFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteFile({})", self.inner.location)
    }
}

impl RemoteFile {
    /// Opens `url` (no request when its size is known from a listing).
    ///
    /// # Errors
    /// [`Error::Io`] naming the URL (see [`lookup`]).
    pub(crate) fn open(url: &Path) -> Result<Self> {
        let s = url.to_string_lossy().into_owned();
        let (scheme, base, key) = split(&s)?;
        let store = store(scheme, &base)?;
        let location = object_path(&s, &key)?;
        let size = size(url)?;
        Ok(RemoteFile {
            inner: Arc::new(Inner {
                store,
                location,
                size,
                window: Mutex::new(Window::default()),
            }),
        })
    }

    fn fetch(&self, start: u64, end: u64) -> object_store::Result<Bytes> {
        block_on(self.inner.store.get_range(&self.inner.location, start..end))
    }

    /// Bytes `start .. start + length`, from the window when it holds them.
    fn bytes(&self, start: u64, length: usize) -> std::io::Result<Bytes> {
        let end = start + length as u64;
        if end > self.inner.size {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "{}: bytes {start}..{end} requested of an object of {} bytes (truncated?)",
                    self.inner.location, self.inner.size
                ),
            ));
        }
        let mut w = self.inner.window.lock().expect("window");
        let w_end = w.start + w.data.len() as u64;
        if start >= w.start && end <= w_end {
            let a = (start - w.start) as usize;
            return Ok(w.data.slice(a..a + length));
        }
        // reading forward from the window: the next window continues it
        let forward = !w.data.is_empty() && start >= w.start && start <= w_end;
        if let Some((a, b, task)) = w.ahead.take() {
            if start >= a && end <= b {
                let data = block_on(task)
                    .map_err(std::io::Error::other)?
                    .map_err(std::io::Error::other)?;
                w.start = a;
                w.data = data;
                self.prefetch(&mut w, b);
                let off = (start - a) as usize;
                return Ok(w.data.slice(off..off + length));
            }
            task.abort();
        }
        let fetch_end = end.max(start + WINDOW_BYTES).min(self.inner.size);
        let data = self
            .fetch(start, fetch_end)
            .map_err(std::io::Error::other)?;
        if data.len() as u64 != fetch_end - start {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("{}: short read", self.inner.location),
            ));
        }
        w.start = start;
        w.data = data;
        if forward {
            self.prefetch(&mut w, fetch_end);
        }
        Ok(w.data.slice(0..length))
    }

    fn prefetch(&self, w: &mut Window, from: u64) {
        if from >= self.inner.size {
            return;
        }
        let to = (from + WINDOW_BYTES).min(self.inner.size);
        let store = self.inner.store.clone();
        let location = self.inner.location.clone();
        let task = runtime().spawn(async move { store.get_range(&location, from..to).await });
        w.ahead = Some((from, to, task));
    }
}

impl Length for RemoteFile {
    fn len(&self) -> u64 {
        self.inner.size
    }
}

impl ChunkReader for RemoteFile {
    type T = RemoteRead;

    fn get_read(&self, start: u64) -> parquet::errors::Result<RemoteRead> {
        Ok(RemoteRead {
            file: self.clone(),
            pos: start,
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        self.bytes(start, length)
            .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))
    }
}

/// A [`Read`] over a [`RemoteFile`] from an offset (page headers are read this way).
pub(crate) struct RemoteRead {
    file: RemoteFile,
    pos: u64,
}

impl Read for RemoteRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.file.inner.size.saturating_sub(self.pos);
        let n = (buf.len() as u64).min(left).min(64 << 10) as usize;
        if n == 0 {
            return Ok(0);
        }
        let b = self.file.bytes(self.pos, n)?;
        buf[..n].copy_from_slice(&b);
        self.pos += n as u64;
        Ok(n)
    }
}

/// Uploads the local file `from` to `url` with a multipart upload completed last: the
/// object appears only when every part is stored; on error the upload is aborted.
///
/// Memory: one part (8 MiB) at a time.
///
/// # Errors
/// [`Error::Io`] naming `url` (store errors) or `from` (reading it).
pub(crate) fn upload(from: &Path, url: &Path) -> Result<()> {
    let s = url.to_string_lossy().into_owned();
    let (scheme, base, key) = split(&s)?;
    let store = store(scheme, &base)?;
    let location = object_path(&s, &key)?;
    let mut file = std::fs::File::open(from).map_err(|e| Error::io(from, e))?;
    let len = file.metadata().map_err(|e| Error::io(from, e))?.len();
    if len <= WINDOW_BYTES {
        // one request, as atomic as the multipart completion
        let mut data = Vec::with_capacity(len as usize);
        file.read_to_end(&mut data)
            .map_err(|e| Error::io(from, e))?;
        return block_on(store.put(&location, Bytes::from(data).into()))
            .map(|_| ())
            .map_err(|e| io_error(&s, e));
    }
    block_on(async {
        let mut upload = store
            .put_multipart(&location)
            .await
            .map_err(|e| io_error(&s, e))?;
        let mut buf = vec![0u8; WINDOW_BYTES as usize];
        loop {
            let mut filled = 0;
            while filled < buf.len() {
                match file.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) => {
                        let _ = upload.abort().await;
                        return Err(Error::io(from, e));
                    }
                }
            }
            if filled == 0 {
                break;
            }
            let part = Bytes::copy_from_slice(&buf[..filled]);
            if let Err(e) = upload.put_part(part.into()).await {
                let _ = upload.abort().await;
                return Err(io_error(&s, e));
            }
            if filled < buf.len() {
                break;
            }
        }
        upload.complete().await.map_err(|e| io_error(&s, e))?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_told_from_paths() {
        for u in [
            "s3://b/k.parquet",
            "s3a://b/",
            "gs://b/k",
            "az://c/k",
            "https://h/x.parquet",
        ] {
            assert!(is_url(Path::new(u)), "{u}");
        }
        for p in [
            "data/x.parquet",
            "/tmp/s3://x",
            "s3:/b/k",
            "s3://",
            "file.parquet",
        ] {
            assert!(!is_url(Path::new(p)), "{p}");
        }
        let (scheme, base, key) = split("s3://bucket/a/b=1/c.parquet").unwrap();
        assert_eq!(
            (scheme, base.as_str(), key.as_str()),
            ("s3", "s3://bucket", "a/b=1/c.parquet")
        );
        assert!(split("s3:///k").is_err());
    }

    #[test]
    fn profile_sections_are_read_by_name() {
        let text =
            "[default]\naws_access_key_id = A\n[profile x]\nRegion = eu-west-1 \n[x]\nregion=no\n";
        assert_eq!(ini_section(text, "default")["aws_access_key_id"], "A");
        assert_eq!(ini_section(text, "profile x")["region"], "eu-west-1");
        assert_eq!(ini_section(text, "x")["region"], "no");
        assert!(ini_section(text, "missing").is_empty());
    }
}
