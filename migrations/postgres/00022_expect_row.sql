-- +goose Up
-- A write whose check (the row it must touch is there) goes to the server
-- with COMMIT, in one pipeline, must fail on the server, so that the
-- transaction rolls back: a count of rows read by the client after the
-- COMMIT ran would come too late (postgres/pipeline.go, expectRow). The
-- statement is wrapped as
--   WITH w AS (<write> RETURNING 1) SELECT envvault_expect_row(EXISTS (SELECT FROM w))
-- and this raises no_data_found (P0002) when the write touched no row.

-- +goose StatementBegin
CREATE FUNCTION envvault_expect_row(touched boolean) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF NOT touched THEN
        RAISE EXCEPTION 'envvault: the statement touched no row' USING ERRCODE = 'no_data_found';
    END IF;
END
$$;
-- +goose StatementEnd
