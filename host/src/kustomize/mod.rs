//! Kustomize roots: which overlays a path reaches, rendering them, and
//! mapping a rendered field back to the base, patch or kustomization line
//! that set it.

pub mod render;
pub mod source;
pub mod tree;

pub use render::{RenderError, RenderedObject, Renderer};
pub use tree::Tree;
