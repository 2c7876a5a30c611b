//! The integration tests, one binary (shared fixtures compile once, and the
//! AWS SDK links once): every command through the real binary, against real
//! peers (moto for S3 and CloudFront, headless Chromium, a real HTTP client).

mod common;

mod browser;
mod build;
mod delivery;
mod edge;
mod edge_function;
mod examples;
mod fair;
mod fleet;
mod gate;
mod hardening;
mod infra;
mod languages;
mod layout;
mod ledger_cluster;
mod ledger_replicas;
mod ledger_sentinel;
mod ledger_tls;
mod monitoring;
mod photos;
mod publish;
mod sale_day;
mod serve;
mod switch;
mod two_languages;
