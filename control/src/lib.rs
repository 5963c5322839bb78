//! Ketch control plane: a Kubernetes API server that keeps all state in etcd.
//!
//! Layers, top to bottom: `api` (HTTP surface, one generic handler over the resource table),
//! `auth` (who and whether), `admission` (defaults, allocations, validation), `registry`
//! (the resource table, per-kind strategy, objects over storage), `storage` (etcd and the watch
//! cache). `schema` and `patch` are shared by the layers; `printers` renders `kubectl get` tables;
//! `cron` is the CronJob schedule syntax (validation and the controller's next activation).

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod admission;
pub mod api;
pub mod auth;
pub mod bootstrap;
pub mod components;
pub mod controllers;
pub mod cron;
pub mod leader;
pub mod metrics;
pub mod patch;
pub mod placement;
pub mod printers;
pub mod proto;
pub mod registry;
pub mod scheduler;
pub mod schema;
pub mod server;
pub mod storage;
