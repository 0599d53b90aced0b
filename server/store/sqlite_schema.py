"""Versioned schema of the SQLite store. Append a migration; never edit one that has shipped.

Index tables are WITHOUT ROWID with the lookup columns first in the primary key, so a search
is a range scan of one b-tree that already holds the resource key (`pk`); the `*_by_pk`
indexes serve the other direction (probing one resource, deleting its rows on update).
Code system URIs are stored once (`code_system`) and referenced by number; token rows carry
the resource's primary date (`dlo`, `dhi`), so a code in a period is a single range scan.
Bodies are JSON compressed with LZ4 (a 0x04 byte first), or zlib in rows written before.
"""

MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
        CREATE TABLE resource (
            pk INTEGER PRIMARY KEY,
            rtype TEXT NOT NULL,
            rid TEXT NOT NULL,
            version INTEGER NOT NULL,
            last_updated REAL NOT NULL,
            deleted INTEGER NOT NULL DEFAULT 0,
            current_seq INTEGER NOT NULL,
            UNIQUE (rtype, rid)
        );
        CREATE INDEX resource_type ON resource (rtype, deleted, pk);
        CREATE INDEX resource_updated ON resource (rtype, last_updated);

        CREATE TABLE resource_version (
            seq INTEGER PRIMARY KEY,
            pk INTEGER NOT NULL,
            version INTEGER NOT NULL,
            last_updated REAL NOT NULL,
            method TEXT NOT NULL,
            body BLOB,
            UNIQUE (pk, version)
        );
        CREATE INDEX resource_version_updated ON resource_version (last_updated);

        CREATE TABLE search_param (
            id INTEGER PRIMARY KEY,
            rtype TEXT NOT NULL,
            name TEXT NOT NULL,
            max_width REAL NOT NULL DEFAULT 0,
            UNIQUE (rtype, name)
        );

        CREATE TABLE code_system (
            id INTEGER PRIMARY KEY,
            uri TEXT NOT NULL UNIQUE
        );

        CREATE TABLE ix_token (
            param INTEGER NOT NULL, code TEXT NOT NULL, dlo REAL NOT NULL, dhi REAL NOT NULL,
            system INTEGER NOT NULL, pk INTEGER NOT NULL,
            PRIMARY KEY (param, code, dlo, dhi, system, pk)
        ) WITHOUT ROWID;
        CREATE INDEX ix_token_by_pk ON ix_token (pk, param);

        CREATE TABLE ix_string (
            param INTEGER NOT NULL, norm TEXT NOT NULL, exact TEXT NOT NULL, pk INTEGER NOT NULL,
            PRIMARY KEY (param, norm, exact, pk)
        ) WITHOUT ROWID;
        CREATE INDEX ix_string_by_pk ON ix_string (pk, param);

        CREATE TABLE ix_date (
            param INTEGER NOT NULL, low REAL NOT NULL, high REAL NOT NULL, pk INTEGER NOT NULL,
            PRIMARY KEY (param, low, high, pk)
        ) WITHOUT ROWID;
        CREATE INDEX ix_date_by_pk ON ix_date (pk, param);

        CREATE TABLE ix_quantity (
            param INTEGER NOT NULL, ccode TEXT NOT NULL, cvalue REAL NOT NULL,
            value REAL NOT NULL, system INTEGER NOT NULL, code TEXT NOT NULL, pk INTEGER NOT NULL,
            PRIMARY KEY (param, ccode, cvalue, pk, value, system, code)
        ) WITHOUT ROWID;
        CREATE INDEX ix_quantity_by_pk ON ix_quantity (pk, param);

        CREATE TABLE ix_reference (
            param INTEGER NOT NULL, target TEXT NOT NULL, pk INTEGER NOT NULL,
            PRIMARY KEY (param, target, pk)
        ) WITHOUT ROWID;
        CREATE INDEX ix_reference_by_pk ON ix_reference (pk, param);

        CREATE TABLE ix_composite (
            param INTEGER NOT NULL, code TEXT NOT NULL, system INTEGER NOT NULL,
            ccode TEXT NOT NULL, cvalue REAL NOT NULL,
            value REAL NOT NULL, usystem INTEGER NOT NULL, ucode TEXT NOT NULL, pk INTEGER NOT NULL,
            PRIMARY KEY (param, code, ccode, cvalue, system, pk, value, usystem, ucode)
        ) WITHOUT ROWID;
        CREATE INDEX ix_composite_by_pk ON ix_composite (pk, param);

        CREATE TABLE app_user (
            name TEXT PRIMARY KEY,
            role TEXT NOT NULL,
            token_hash TEXT NOT NULL UNIQUE,
            created REAL NOT NULL,
            devices TEXT NOT NULL DEFAULT '[]',
            active INTEGER NOT NULL DEFAULT 1
        );
        """,
    ),
    (
        2,
        """
        CREATE TABLE dose_fact (
            key TEXT PRIMARY KEY,
            level TEXT NOT NULL,
            study_uid TEXT NOT NULL,
            resource TEXT NOT NULL,
            modality TEXT NOT NULL,
            patient TEXT, device TEXT, date REAL,
            protocol TEXT, procedure TEXT, body_region TEXT, acquisition_type TEXT,
            age_years REAL, weight_kg REAL, size_m REAL, events INTEGER,
            ctdivol_mgy REAL, dlp_mgy_cm REAL, ssde_mgy REAL, dap_gy_m2 REAL, dose_rp_gy REAL,
            agd_mgy REAL, agd_left_mgy REAL, agd_right_mgy REAL, fluoro_time_s REAL,
            exposure_index REAL, kvp_kv REAL
        );
        CREATE INDEX dose_fact_study ON dose_fact (study_uid);
        CREATE INDEX dose_fact_modality ON dose_fact (level, modality, date);
        CREATE INDEX dose_fact_device ON dose_fact (level, device, date);
        """,
    ),
    (
        3,
        """
        ALTER TABLE dose_fact ADD COLUMN tube_current_ma REAL;
        ALTER TABLE dose_fact ADD COLUMN exposure_mas REAL;
        ALTER TABLE dose_fact ADD COLUMN pitch_factor REAL;
        ALTER TABLE dose_fact ADD COLUMN collimation_mm REAL;
        """,
    ),
    (
        4,
        """
        CREATE TABLE fact_change (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            study_uid TEXT NOT NULL
        );
        """,
    ),
    (
        5,
        """
        ALTER TABLE app_user ADD COLUMN jwks TEXT NOT NULL DEFAULT '';
        CREATE TABLE used_assertion (key TEXT PRIMARY KEY, expires REAL NOT NULL);
        """,
    ),
    (
        6,
        """
        ALTER TABLE app_user ADD COLUMN password_hash TEXT NOT NULL DEFAULT '';
        CREATE TABLE failed_sign_in (key TEXT NOT NULL, at REAL NOT NULL);
        CREATE INDEX failed_sign_in_key ON failed_sign_in (key, at);
        """,
    ),
    (
        7,
        """
        ALTER TABLE dose_fact ADD COLUMN category TEXT;
        """,
    ),
)
