//! A CloudFront KeyValueStore's data plane, through the AWS SDK's client:
//! every change carries the store's ETag (`If-Match`) and gets the next one
//! back; a stale ETag (409, another writer came first) is read again and the
//! batch retried; at most [`BATCH`] keys per call, as the API allows.

use aws_config::SdkConfig;
use aws_sdk_cloudfrontkeyvaluestore::error::ProvideErrorMetadata;
use aws_sdk_cloudfrontkeyvaluestore::types::{DeleteKeyRequestListItem, PutKeyRequestListItem};
use aws_sdk_cloudfrontkeyvaluestore::Client;

use super::aws::describe;
use super::RemoteError;

/// Most keys one UpdateKeys call may change.
pub(crate) const BATCH: usize = 50;

/// Attempts per batch when the ETag keeps going stale.
const ATTEMPTS: usize = 5;

/// One KeyValueStore.
pub(crate) struct KeyValueStore {
    client: Client,
    arn: String,
}

/// What a change did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Written {
    pub(crate) calls: usize,
    /// Batches retried after a 409 (a stale ETag).
    pub(crate) conflicts: usize,
    pub(crate) items: i64,
}

impl KeyValueStore {
    /// `endpoint`: a stand-in's address, used as it is (AWS's endpoint rules
    /// would put the account id in front of its host).
    pub(crate) fn new(shared: &SdkConfig, arn: &str, endpoint: Option<&str>) -> KeyValueStore {
        let mut config = aws_sdk_cloudfrontkeyvaluestore::config::Builder::from(shared);
        if let Some(url) = endpoint {
            config = config.endpoint_resolver(Fixed(url.to_string()));
        }
        KeyValueStore {
            client: Client::from_conf(config.build()),
            arn: arn.to_string(),
        }
    }

    async fn etag(&self) -> Result<String, RemoteError> {
        let out = self
            .client
            .describe_key_value_store()
            .kvs_arn(&self.arn)
            .send()
            .await
            .map_err(|e| describe("DescribeKeyValueStore", &self.arn, &e))?;
        Ok(out.e_tag().to_string())
    }

    /// Puts `puts` and deletes `deletes`, [`BATCH`] keys per call.
    pub(crate) async fn update(
        &self,
        puts: &[(String, String)],
        deletes: &[String],
    ) -> Result<Written, RemoteError> {
        let mut w = Written::default();
        let mut etag = self.etag().await?;
        w.calls += 1;
        let changes: Vec<Change> = puts
            .iter()
            .map(|(k, v)| Change::Put(k, v))
            .chain(deletes.iter().map(|k| Change::Delete(k)))
            .collect();
        for batch in changes.chunks(BATCH) {
            let mut attempt = 0;
            loop {
                attempt += 1;
                let mut call = self.client.update_keys().kvs_arn(&self.arn).if_match(&etag);
                for c in batch {
                    call = match c {
                        Change::Put(k, v) => call.puts(
                            PutKeyRequestListItem::builder()
                                .key(*k)
                                .value(*v)
                                .build()
                                .expect("key and value are set"),
                        ),
                        Change::Delete(k) => call.deletes(
                            DeleteKeyRequestListItem::builder()
                                .key(*k)
                                .build()
                                .expect("key is set"),
                        ),
                    };
                }
                w.calls += 1;
                match call.send().await {
                    Ok(out) => {
                        etag = out.e_tag().to_string();
                        w.items = i64::from(out.item_count());
                        break;
                    }
                    Err(e) if e.code() == Some("ConflictException") && attempt < ATTEMPTS => {
                        w.conflicts += 1;
                        etag = self.etag().await?;
                        w.calls += 1;
                    }
                    Err(e) => return Err(describe("UpdateKeys", &self.arn, &e)),
                }
            }
        }
        Ok(w)
    }
}

/// An endpoint used as given.
#[derive(Debug)]
struct Fixed(String);

impl aws_sdk_cloudfrontkeyvaluestore::config::endpoint::ResolveEndpoint for Fixed {
    fn resolve_endpoint<'a>(
        &'a self,
        _: &'a aws_sdk_cloudfrontkeyvaluestore::config::endpoint::Params,
    ) -> aws_sdk_cloudfrontkeyvaluestore::config::endpoint::EndpointFuture<'a> {
        aws_sdk_cloudfrontkeyvaluestore::config::endpoint::EndpointFuture::ready(Ok(
            aws_sdk_cloudfrontkeyvaluestore::config::endpoint::Endpoint::builder()
                .url(self.0.clone())
                .build(),
        ))
    }
}

enum Change<'a> {
    Put(&'a str, &'a str),
    Delete(&'a str),
}

/// The store `[edge]` names, with AWS's settings (its region does not
/// matter: the store is global, and its API is signed with SigV4a).
pub(crate) async fn open(
    edge: &crate::config::EdgeConfig,
    flags: &super::AwsFlags,
) -> Result<KeyValueStore, super::AwsError> {
    let settings = crate::config::PublishConfig {
        bucket: String::new(),
        prefix: String::new(),
        region: Some("us-east-1".into()),
        endpoint: None,
        distribution_id: None,
        max_deletes: 0,
        max_invalidation_paths: 0,
    };
    let flags = super::AwsFlags {
        profile: flags.profile.clone(),
        region: None,
        endpoint_url: None,
    };
    let shared = super::aws::load(&settings, &flags).await?;
    Ok(KeyValueStore::new(
        &shared,
        &edge.kvs_arn,
        edge.endpoint.as_deref(),
    ))
}
