//! Renders an outcome. Every format reads the same `Located` findings; adding
//! a format touches one file.

pub mod github;
pub mod human;
pub mod json;
pub mod junit;
pub mod policies;
pub mod sarif;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
    Sarif,
    Junit,
    Github,
}
