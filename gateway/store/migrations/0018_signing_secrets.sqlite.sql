-- Each subscription's signing keys (gateway/outbound/signing.py), sealed with server.secret_key so
-- that no secret is stored in the clear, and shared by every replica: rotations add one and retire
-- the others after an overlap, during which every live key signs. Retention removes retired keys.
CREATE TABLE signing_secrets (
    subscription  TEXT NOT NULL,
    kid           TEXT NOT NULL,
    kind          TEXT NOT NULL,
    sealed        TEXT NOT NULL,
    public        TEXT,
    created_at    REAL NOT NULL,
    retire_at     REAL,
    source        TEXT NOT NULL,
    PRIMARY KEY (subscription, kid)
);
