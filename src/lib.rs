//! flashsale: build, preview, publish and run e-commerce flash sales.
//!
//! The library does the work; `src/cmd/` only turns command lines into calls.
//! Data flows `config` → `content` → `render` (with `theme` and `assets`) →
//! `output` + `manifest`; `sale` holds the toggle format everyone shares.

pub mod assets;
pub mod check;
pub mod client;
pub mod config;
pub mod content;
pub mod diag;
pub mod gate;
pub mod headers;
pub mod manifest;
pub mod money;
pub mod output;
pub mod publish;
pub mod rehearse;
pub mod render;
pub mod sale;
pub mod scaffold;
pub mod serve;
pub mod site;
pub mod switch;
pub mod theme;
