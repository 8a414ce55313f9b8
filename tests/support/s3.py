"""Talking to moto's S3 server on loopback."""

S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}

# deltalake's object store (Rust) reads AWS_REGION, and refuses http:// endpoints unless told
DELTA_S3_ENV = {**S3_ENV, "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}
