//! A store in memory: the preview's "bucket" that `open`/`close` write the
//! toggle to, and the store of unit tests, which can be told to fail at the
//! Nth call to exercise part-way errors.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::RwLock;

use super::{dir::etag_of, ErrorKind, Known, Listed, Remote, RemoteError};
use crate::util::sync::{read, write};

/// One stored object.
#[derive(Debug, Clone)]
struct Object {
    body: Vec<u8>,
    headers: BTreeMap<String, String>,
    meta: BTreeMap<String, String>,
    etag: String,
}

#[derive(Default)]
pub(crate) struct MemoryStore {
    objects: RwLock<BTreeMap<String, Object>>,
    calls: AtomicUsize,
    /// Every call from this one on (1-based) fails; 0: none does.
    fail_from: AtomicUsize,
    /// Written just before the next write (another writer landing between
    /// a caller's read and its write).
    interpose: std::sync::Mutex<Option<(String, Vec<u8>)>>,
}

impl MemoryStore {
    /// A store whose `n`th call (1-based, any operation) and every later one fail.
    #[cfg(test)]
    pub(crate) fn failing_from(n: usize) -> MemoryStore {
        let store = MemoryStore::default();
        store.fail_from(n);
        store
    }

    /// From now on, the `n`th call (counted from the first ever) and every
    /// later one fail; 0 heals the store.
    #[cfg(test)]
    pub(crate) fn fail_from(&self, n: usize) {
        self.fail_from.store(n, Ordering::SeqCst);
    }

    /// Every key held.
    #[cfg(test)]
    pub(crate) fn keys(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    /// An object's bytes, without counting as a call (for the preview's server).
    pub(crate) fn bytes(&self, key: &str) -> Option<Vec<u8>> {
        self.read().get(key).map(|o| o.body.clone())
    }

    /// An object's headers, without counting as a call.
    #[cfg(test)]
    pub(crate) fn headers(&self, key: &str) -> Option<BTreeMap<String, String>> {
        self.read().get(key).map(|o| o.headers.clone())
    }

    /// Before the next write, `body` lands at `key` as if another writer
    /// had put it just then.
    #[cfg(test)]
    pub(crate) fn before_next_write(&self, key: &str, body: Vec<u8>) {
        *crate::util::sync::lock(&self.interpose) = Some((key.to_string(), body));
    }

    /// Puts what `before_next_write` (tests) holds, once.
    fn interposed(&self) {
        if let Some((key, body)) = crate::util::sync::lock(&self.interpose).take() {
            let etag = etag_of(&body);
            self.write().insert(
                key,
                Object {
                    body,
                    headers: BTreeMap::new(),
                    meta: BTreeMap::new(),
                    etag,
                },
            );
        }
    }

    /// Calls so far, failed ones included.
    #[cfg(test)]
    pub(crate) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Object>> {
        read(&self.objects)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Object>> {
        write(&self.objects)
    }

    /// Counts a call; fails it if the store was told to.
    fn call(&self, what: &str) -> Result<(), RemoteError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        match self.fail_from.load(Ordering::SeqCst) {
            from if from > 0 && n >= from => Err(RemoteError::new(
                ErrorKind::Unreachable,
                format!("memory: {what} failed (call {n}, told to fail from call {from})"),
            )),
            _ => Ok(()),
        }
    }
}

impl Remote for MemoryStore {
    fn describe(&self) -> String {
        "memory".to_string()
    }

    async fn list(&self) -> Result<(Vec<Listed>, usize), RemoteError> {
        self.call("list")?;
        let listed = self
            .read()
            .iter()
            .map(|(k, o)| Listed {
                key: k.clone(),
                etag: Some(o.etag.clone()),
            })
            .collect();
        Ok((listed, 1))
    }

    async fn head(&self, key: &str) -> Result<Option<Known>, RemoteError> {
        self.call("head")?;
        Ok(self
            .read()
            .get(key)
            .and_then(|o| Known::from_metadata(&o.meta, Some(o.etag.clone()))))
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, RemoteError> {
        self.call("get")?;
        Ok(self.bytes(key))
    }

    async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        headers: &BTreeMap<String, String>,
        meta: &BTreeMap<String, String>,
    ) -> Result<Option<String>, RemoteError> {
        self.call("put")?;
        self.interposed();
        let etag = etag_of(&body);
        self.write().insert(
            key.to_string(),
            Object {
                body,
                headers: headers.clone(),
                meta: meta.clone(),
                etag: etag.clone(),
            },
        );
        Ok(Some(etag))
    }

    async fn get_tagged(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, RemoteError> {
        self.call("get")?;
        Ok(self
            .read()
            .get(key)
            .map(|o| (o.body.clone(), o.etag.clone())))
    }

    async fn put_if(
        &self,
        key: &str,
        body: Vec<u8>,
        headers: &BTreeMap<String, String>,
        meta: &BTreeMap<String, String>,
        read: Option<&str>,
    ) -> Result<bool, RemoteError> {
        self.call("put")?;
        self.interposed();
        let mut objects = self.write();
        if objects.get(key).map(|o| o.etag.as_str()) != read {
            return Ok(false);
        }
        let etag = etag_of(&body);
        objects.insert(
            key.to_string(),
            Object {
                body,
                headers: headers.clone(),
                meta: meta.clone(),
                etag,
            },
        );
        Ok(true)
    }

    async fn set_headers(
        &self,
        key: &str,
        headers: &BTreeMap<String, String>,
        meta: &BTreeMap<String, String>,
    ) -> Result<Option<String>, RemoteError> {
        self.call("copy")?;
        let mut objects = self.write();
        let o = objects.get_mut(key).ok_or_else(|| {
            RemoteError::new(ErrorKind::Missing, format!("memory: no object {key}"))
        })?;
        o.headers = headers.clone();
        o.meta = meta.clone();
        Ok(Some(o.etag.clone()))
    }

    async fn delete(&self, keys: &[String]) -> Result<usize, RemoteError> {
        self.call("delete")?;
        let mut objects = self.write();
        for k in keys {
            objects.remove(k);
        }
        Ok(1)
    }
}
