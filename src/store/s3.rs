//! Amazon S3 (or an S3-compatible store) through the AWS SDK, and what S3 and
//! CloudFront share: loading credentials and region once, and turning SDK
//! errors into one line a user can act on. With `cloudfront.rs`, the only
//! code that knows AWS. Credentials come from the standard chain
//! (environment, profile, SSO, instance role); nothing here prints them.

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, MetadataDirective, ObjectIdentifier};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::aws::describe;
use super::{ErrorKind, Known, Listed, Remote, RemoteError};
use crate::config::PublishConfig;

/// Keys in copy sources are URL-encoded, except for the separators.
const COPY_SOURCE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

pub(crate) struct S3Remote {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
}

impl S3Remote {
    pub(crate) fn new(shared: &SdkConfig, cfg: &PublishConfig) -> S3Remote {
        let conf = aws_sdk_s3::config::Builder::from(shared)
            // Custom endpoints (S3-compatible stores, local servers) want path-style addressing.
            .force_path_style(shared.endpoint_url().is_some())
            .build();
        S3Remote {
            client: aws_sdk_s3::Client::from_conf(conf),
            bucket: cfg.bucket.clone(),
            prefix: cfg.prefix.clone(),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// A PutObject of `body` at `key`, headers and conditions still to add.
    fn put_object(
        &self,
        key: &str,
        body: Vec<u8>,
    ) -> aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(self.key(key))
            .body(ByteStream::from(body))
    }
}

/// Copies the headers a file is served with onto a request builder.
macro_rules! with_headers {
    ($req:expr, $headers:expr, $meta:expr) => {{
        let mut req = $req;
        for (k, v) in $headers {
            req = match k.as_str() {
                "Content-Type" => req.content_type(v),
                "Cache-Control" => req.cache_control(v),
                "Content-Language" => req.content_language(v),
                "Content-Disposition" => req.content_disposition(v),
                _ => req,
            };
        }
        for (k, v) in $meta {
            req = req.metadata(k, v);
        }
        req
    }};
}

impl Remote for S3Remote {
    fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    async fn list(&self) -> Result<(Vec<Listed>, usize), RemoteError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        let mut requests = 0;
        loop {
            let mut req = self.client.list_objects_v2().bucket(&self.bucket);
            if !self.prefix.is_empty() {
                req = req.prefix(&self.prefix);
            }
            if let Some(t) = &token {
                req = req.continuation_token(t);
            }
            requests += 1;
            let page = req
                .send()
                .await
                .map_err(|e| describe("ListObjectsV2", &self.describe(), &e))?;
            for o in page.contents() {
                if let Some(key) = o.key().and_then(|k| k.strip_prefix(&self.prefix)) {
                    out.push(Listed {
                        key: key.to_string(),
                        etag: o.e_tag().map(str::to_string),
                    });
                }
            }
            token = page.next_continuation_token().map(str::to_string);
            if token.is_none() || page.is_truncated() != Some(true) {
                return Ok((out, requests));
            }
        }
    }

    async fn head(&self, key: &str) -> Result<Option<Known>, RemoteError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.key(key))
            .send()
            .await
        {
            Ok(out) => {
                let meta: BTreeMap<String, String> = out
                    .metadata()
                    .map(|m| m.clone().into_iter().collect())
                    .unwrap_or_default();
                Ok(Known::from_metadata(&meta, out.e_tag().map(str::to_string)))
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) => Err(describe("HeadObject", &self.describe(), &e)),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, RemoteError> {
        Ok(self.get_tagged(key).await?.map(|(bytes, _)| bytes))
    }

    async fn get_tagged(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, RemoteError> {
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.key(key))
            .send()
            .await
        {
            Ok(out) => {
                let etag = out.e_tag().unwrap_or_default().to_string();
                let bytes = out.body.collect().await.map_err(|e| {
                    RemoteError::new(
                        ErrorKind::Unreachable,
                        format!("{}: reading {key} failed: {e}", self.describe()),
                    )
                })?;
                Ok(Some((bytes.into_bytes().to_vec(), etag)))
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(describe("GetObject", &self.describe(), &e)),
        }
    }

    async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        headers: &BTreeMap<String, String>,
        meta: &BTreeMap<String, String>,
    ) -> Result<Option<String>, RemoteError> {
        let req = self.put_object(key, body);
        let out = with_headers!(req, headers, meta)
            .send()
            .await
            .map_err(|e| describe(&format!("PutObject {key}"), &self.describe(), &e))?;
        Ok(out.e_tag().map(str::to_string))
    }

    async fn put_if(
        &self,
        key: &str,
        body: Vec<u8>,
        headers: &BTreeMap<String, String>,
        meta: &BTreeMap<String, String>,
        read: Option<&str>,
    ) -> Result<bool, RemoteError> {
        let req = self.put_object(key, body);
        let req = match read {
            Some(etag) => req.if_match(etag),
            None => req.if_none_match("*"),
        };
        match with_headers!(req, headers, meta).send().await {
            Ok(_) => Ok(true),
            // 412: not the version read; 409: another conditional write of
            // it is under way. Either way it changed: read it again.
            Err(e)
                if e.raw_response()
                    .is_some_and(|r| matches!(r.status().as_u16(), 412 | 409)) =>
            {
                Ok(false)
            }
            Err(e) => Err(describe(&format!("PutObject {key}"), &self.describe(), &e)),
        }
    }

    async fn set_headers(
        &self,
        key: &str,
        headers: &BTreeMap<String, String>,
        meta: &BTreeMap<String, String>,
    ) -> Result<Option<String>, RemoteError> {
        let source =
            utf8_percent_encode(&format!("{}/{}", self.bucket, self.key(key)), COPY_SOURCE)
                .to_string();
        let req = self
            .client
            .copy_object()
            .bucket(&self.bucket)
            .key(self.key(key))
            .copy_source(source)
            .metadata_directive(MetadataDirective::Replace);
        let out = with_headers!(req, headers, meta)
            .send()
            .await
            .map_err(|e| describe(&format!("CopyObject {key}"), &self.describe(), &e))?;
        Ok(out
            .copy_object_result()
            .and_then(|r| r.e_tag())
            .map(str::to_string))
    }

    async fn delete(&self, keys: &[String]) -> Result<usize, RemoteError> {
        let mut requests = 0;
        for chunk in keys.chunks(1000) {
            let objects = chunk
                .iter()
                .map(|k| {
                    ObjectIdentifier::builder()
                        .key(self.key(k))
                        .build()
                        .expect("key is set")
                })
                .collect();
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .expect("objects are set");
            requests += 1;
            let out = self
                .client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| describe("DeleteObjects", &self.describe(), &e))?;
            if let Some(e) = out.errors().first() {
                return Err(RemoteError::new(
                    ErrorKind::Other,
                    format!(
                        "{}: deleting {} failed: {}",
                        self.describe(),
                        e.key().unwrap_or("?"),
                        e.message().or(e.code()).unwrap_or("unknown error")
                    ),
                ));
            }
        }
        Ok(requests)
    }
}
