-- The case archive (issue 18): every ticket as it ended, kept for years.
-- Written only by the gateway's archiving job (an upsert that never replaces a newer version)
-- and by the retention job (which erases personal data); read by ticket reads, reopens,
-- retries, searches and reports.

CREATE TABLE cases (
    id           text PRIMARY KEY,          -- <county>-<seq>
    county       text NOT NULL,
    ver          bigint NOT NULL,           -- record version it was archived at
    status       text NOT NULL,             -- closed, returned, withdrawn, transferred
    source       text NOT NULL,             -- 12345, 110, 12348
    external_id  text NOT NULL,
    sender       text,
    service      text NOT NULL,
    category     text NOT NULL,
    level        text NOT NULL,
    town         text,
    village      text,
    grid         text,
    agent        text,
    created_at   timestamptz NOT NULL,
    resolved_at  timestamptz,
    ended_at     timestamptz NOT NULL,
    archived_at  timestamptz NOT NULL DEFAULT now(),
    title        text NOT NULL,
    body         text NOT NULL,
    -- Every distinct pair of adjacent characters of title and body (Chinese has no spaces, so
    -- words cannot be indexed; a bigram index finds any substring of two or more characters).
    grams        text[] NOT NULL,
    caller_name  text,                      -- personal data: NULL once erased
    caller_phone text,
    caller_key   text,                      -- hash of the phone's digits (repeat requests)
    personal_erased_at timestamptz,
    linked       text[] NOT NULL DEFAULT '{}',
    request      jsonb NOT NULL,            -- the request as received (personal fields erased later)
    fields       jsonb NOT NULL,            -- the store's fields, to restore it on reopen
    history      jsonb NOT NULL             -- every event, oldest first
);

-- Search: newest first with a cursor on (created_at, id), by county, by the sender's id, by
-- caller, by agent, by resolution time; text through the bigrams.
CREATE INDEX cases_created ON cases (created_at DESC, id DESC);
CREATE INDEX cases_county_created ON cases (county, created_at DESC, id DESC);
CREATE INDEX cases_external ON cases (source, external_id);
CREATE INDEX cases_caller ON cases (caller_key) WHERE caller_key IS NOT NULL;
CREATE INDEX cases_agent ON cases (agent, created_at DESC) WHERE agent IS NOT NULL;
CREATE INDEX cases_resolved ON cases (resolved_at) WHERE resolved_at IS NOT NULL;
CREATE INDEX cases_grams ON cases USING gin (grams);
-- Retention: cases whose personal data is still there, oldest ending first.
CREATE INDEX cases_personal ON cases (ended_at) WHERE personal_erased_at IS NULL;
