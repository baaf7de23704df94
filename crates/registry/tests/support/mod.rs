pub mod corpora;
