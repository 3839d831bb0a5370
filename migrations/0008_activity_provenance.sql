-- The database decides who registered an activity: `registered_by` is the inserting user
-- (auth.uid()), a mentor inserts only `direct` activities for their own assignments, and `proxy` /
-- `coordinator_proxy` come only from the mentor's own coordinator. `bulk` (imports) and anything else
-- come from the service role, which bypasses row-level security.

-- Supabase's auth.uid(): present on Supabase, created here only when absent.
DO $$
BEGIN
    IF to_regprocedure('auth.uid()') IS NULL THEN
        CREATE FUNCTION auth.uid() RETURNS uuid
            LANGUAGE sql STABLE
            AS 'SELECT nullif(auth.jwt() ->> ''sub'', '''')::uuid';
        GRANT EXECUTE ON FUNCTION auth.uid() TO anon, authenticated, service_role;
    END IF;
END
$$;

ALTER TABLE public.activities ALTER COLUMN registered_by SET DEFAULT auth.uid();

DROP POLICY activities_insert_own ON public.activities;

CREATE POLICY activities_insert_by_mentor ON public.activities FOR INSERT TO authenticated
    WITH CHECK (
        registration_path = 'direct'
        AND registered_by = auth.uid()
        AND mentor_id = app_private.current_mentor_id()
        AND EXISTS (
            SELECT 1 FROM public.assignments a
            WHERE a.id = activities.assignment_id AND a.mentor_id = app_private.current_mentor_id()
        )
    );

CREATE POLICY activities_insert_by_coordinator ON public.activities FOR INSERT TO authenticated
    WITH CHECK (
        registration_path IN ('proxy', 'coordinator_proxy')
        AND registered_by = auth.uid()
        AND app_private.coordinates_mentor(mentor_id)
        AND EXISTS (
            SELECT 1 FROM public.assignments a
            WHERE a.id = activities.assignment_id AND a.mentor_id = activities.mentor_id
        )
    );
