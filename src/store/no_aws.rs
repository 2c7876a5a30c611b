//! S3 and CloudFront when flashsale is built without the `aws` cargo feature
//! (`cargo build --no-default-features`): the types the rest of the code
//! names exist but cannot be made — loading AWS settings fails with
//! `AwsError::NotBuilt` (`store::aws`), which says how to get a build that has them.

use super::aws::SdkConfig;
use super::edge::ToggleCaching;
use super::{Cdn, Known, Listed, Remote, RemoteError};
use crate::config::PublishConfig;

pub(crate) enum S3Remote {}

impl S3Remote {
    pub(crate) fn new(shared: &SdkConfig, _: &PublishConfig) -> S3Remote {
        match *shared {}
    }
}

impl Remote for S3Remote {
    fn describe(&self) -> String {
        match *self {}
    }
    async fn list(&self) -> Result<(Vec<Listed>, usize), RemoteError> {
        match *self {}
    }
    async fn head(&self, _: &str) -> Result<Option<Known>, RemoteError> {
        match *self {}
    }
    async fn get(&self, _: &str) -> Result<Option<Vec<u8>>, RemoteError> {
        match *self {}
    }
    async fn put(
        &self,
        _: &str,
        _: Vec<u8>,
        _: &std::collections::BTreeMap<String, String>,
        _: &std::collections::BTreeMap<String, String>,
    ) -> Result<Option<String>, RemoteError> {
        match *self {}
    }
    async fn get_tagged(&self, _: &str) -> Result<Option<(Vec<u8>, String)>, RemoteError> {
        match *self {}
    }
    async fn put_if(
        &self,
        _: &str,
        _: Vec<u8>,
        _: &std::collections::BTreeMap<String, String>,
        _: &std::collections::BTreeMap<String, String>,
        _: Option<&str>,
    ) -> Result<bool, RemoteError> {
        match *self {}
    }
    async fn set_headers(
        &self,
        _: &str,
        _: &std::collections::BTreeMap<String, String>,
        _: &std::collections::BTreeMap<String, String>,
    ) -> Result<Option<String>, RemoteError> {
        match *self {}
    }
    async fn delete(&self, _: &[String]) -> Result<usize, RemoteError> {
        match *self {}
    }
}

pub(crate) enum CloudFront {}

impl CloudFront {
    pub(crate) fn new(shared: &SdkConfig, _: &str) -> CloudFront {
        match *shared {}
    }

    pub(crate) async fn toggle_caching(&self, _: &str) -> Result<ToggleCaching, RemoteError> {
        match *self {}
    }
}

impl Cdn for CloudFront {
    async fn invalidate(&self, _: &[String], _: &str) -> Result<String, RemoteError> {
        match *self {}
    }
    async fn completed(&self, _: &str) -> Result<bool, RemoteError> {
        match *self {}
    }
    async fn warm(&self) -> Result<(), RemoteError> {
        match *self {}
    }
    fn describe(&self) -> String {
        match *self {}
    }
}
