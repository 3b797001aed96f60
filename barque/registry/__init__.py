"""The registry client: pull and push images over the OCI distribution API, Docker-style
credentials and progress output. It knows nothing of Barque's image database: pull stores
blobs in a BlobStore and returns what it fetched; push reads blobs from one."""
