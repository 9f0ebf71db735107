-- The audit log of privileged actions (issue 18): who (token name and role), when, which
-- request, what was done to what, and what changed. Append-only for the gateway: the
-- triggers refuse UPDATE, DELETE and TRUNCATE, so even the gateway's own database user (which
-- owns the table) cannot rewrite history through it.

CREATE TABLE audit_log (
    seq         bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,            -- token name
    role        text NOT NULL,
    action      text NOT NULL,            -- e.g. agent.define, admin.reload, tickets.search
    request_id  text,                     -- the x-request-id of the request
    target      text,                     -- what it was done to (agent id, ticket id, ...)
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb
);
-- Pages are read newest first by `seq` (the keyset cursor), optionally by actor, action or
-- target; a time range narrows by `at`.
CREATE INDEX audit_log_at ON audit_log (at DESC);
CREATE INDEX audit_log_actor ON audit_log (actor, seq DESC);
CREATE INDEX audit_log_action ON audit_log (action, seq DESC);
CREATE INDEX audit_log_target ON audit_log (target, seq DESC) WHERE target IS NOT NULL;

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
