//! A dry run: reads from the real store and CDN, writes nothing, and answers
//! every write as if it had happened, so the very same publish and switch
//! code runs and reports what it would do.

use std::collections::BTreeMap;

use super::{dir::etag_of, Cdn, Known, Listed, Remote, RemoteError};

pub(crate) struct DryRun<R>(pub(crate) R);

impl<R: Remote> Remote for DryRun<R> {
    fn describe(&self) -> String {
        format!("{} (dry run)", self.0.describe())
    }

    async fn list(&self) -> Result<(Vec<Listed>, usize), RemoteError> {
        self.0.list().await
    }

    async fn head(&self, key: &str) -> Result<Option<Known>, RemoteError> {
        self.0.head(key).await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, RemoteError> {
        self.0.get(key).await
    }

    async fn put(
        &self,
        _: &str,
        body: Vec<u8>,
        _: &BTreeMap<String, String>,
        _: &BTreeMap<String, String>,
    ) -> Result<Option<String>, RemoteError> {
        Ok(Some(etag_of(&body)))
    }

    async fn get_tagged(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, RemoteError> {
        self.0.get_tagged(key).await
    }

    async fn put_if(
        &self,
        _: &str,
        _: Vec<u8>,
        _: &BTreeMap<String, String>,
        _: &BTreeMap<String, String>,
        _: Option<&str>,
    ) -> Result<bool, RemoteError> {
        Ok(true)
    }

    async fn set_headers(
        &self,
        _: &str,
        _: &BTreeMap<String, String>,
        _: &BTreeMap<String, String>,
    ) -> Result<Option<String>, RemoteError> {
        Ok(None)
    }

    async fn delete(&self, _: &[String]) -> Result<usize, RemoteError> {
        Ok(0)
    }
}

/// The CDN of a dry run: nothing is invalidated.
pub(crate) struct DryRunCdn<C>(pub(crate) C);

impl<C: Cdn> Cdn for DryRunCdn<C> {
    async fn invalidate(&self, _: &[String], _: &str) -> Result<String, RemoteError> {
        Ok("(dry run)".to_string())
    }

    async fn completed(&self, _: &str) -> Result<bool, RemoteError> {
        Ok(true)
    }

    async fn warm(&self) -> Result<(), RemoteError> {
        self.0.warm().await
    }

    fn describe(&self) -> String {
        format!("{} (dry run)", self.0.describe())
    }
}
