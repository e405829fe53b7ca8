//! Renders an outcome. Every format reads the same `Located` findings; adding
//! a format touches one file.

pub mod human;
pub mod json;
pub mod policies;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
}
