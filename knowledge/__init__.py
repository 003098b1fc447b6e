"""The knowledge library: embedders, loaders, splitting, FAISS index and docstore."""
