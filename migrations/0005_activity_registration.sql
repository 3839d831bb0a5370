-- Every way an activity is written, by this code or by the mobile app through Supabase, keeps the
-- assignment's last_contact_date current: the database does it, in statement-level triggers that
-- update all touched assignments in one set-based statement (a bulk of 10,000 is one UPDATE).
-- last_contact_date only moves forward here; only the audited admin correction moves it back.

ALTER TABLE public.activities
    ADD COLUMN registration_path text NOT NULL DEFAULT 'direct'
        CHECK (registration_path IN ('direct', 'proxy', 'bulk', 'coordinator_proxy')),
    ADD COLUMN registered_by uuid;
COMMENT ON COLUMN public.activities.registered_by IS 'auth user id of whoever registered the activity';

-- Rejects, for the whole statement, activities dated in the future (Europe/Oslo) or for a closed
-- assignment. (An unknown assignment is already refused by the foreign key.)
CREATE FUNCTION app_private.check_and_apply_activities() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = ''
    AS $$
DECLARE
    today date := (now() AT TIME ZONE 'Europe/Oslo')::date;
    offending text;
BEGIN
    SELECT string_agg(DISTINCT n.assignment_id::text, ', ') INTO offending
    FROM new_rows n WHERE n.activity_date > today;
    IF offending IS NOT NULL THEN
        RAISE EXCEPTION 'activity dated in the future for assignment(s) %', offending
            USING ERRCODE = '22007', HINT = 'activity_date must be today or earlier (Europe/Oslo)';
    END IF;

    SELECT string_agg(DISTINCT n.assignment_id::text, ', ') INTO offending
    FROM new_rows n JOIN public.assignments a ON a.id = n.assignment_id WHERE a.status <> 'active';
    IF offending IS NOT NULL THEN
        RAISE EXCEPTION 'activity for closed assignment(s) %', offending USING ERRCODE = '23514';
    END IF;

    UPDATE public.assignments AS a
    SET last_contact_date = latest.activity_date
    FROM (SELECT assignment_id, max(activity_date) AS activity_date FROM new_rows GROUP BY assignment_id) AS latest
    WHERE a.id = latest.assignment_id
      AND (a.last_contact_date IS NULL OR a.last_contact_date < latest.activity_date);
    RETURN NULL;
END
$$;

CREATE TRIGGER activities_apply_contact_after_insert
    AFTER INSERT ON public.activities REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION app_private.check_and_apply_activities();
CREATE TRIGGER activities_apply_contact_after_update
    AFTER UPDATE ON public.activities REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION app_private.check_and_apply_activities();

-- The admin correction's audit trail, written in the same transaction as the change.
CREATE TABLE public.last_contact_corrections (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    assignment_id uuid NOT NULL REFERENCES public.assignments (id),
    corrected_by  uuid NOT NULL,
    corrected_at  timestamptz NOT NULL DEFAULT now(),
    old_value     date,
    new_value     date NOT NULL,
    reason        text NOT NULL CHECK (length(btrim(reason)) > 0)
);
CREATE INDEX last_contact_corrections_assignment_idx ON public.last_contact_corrections (assignment_id, corrected_at DESC);

ALTER TABLE public.last_contact_corrections ENABLE ROW LEVEL SECURITY;
CREATE POLICY last_contact_corrections_admin_read ON public.last_contact_corrections FOR SELECT TO authenticated
    USING (app_private.is_admin());
REVOKE ALL ON public.last_contact_corrections FROM anon, authenticated;
GRANT SELECT ON public.last_contact_corrections TO authenticated;
GRANT ALL ON public.last_contact_corrections TO service_role;
