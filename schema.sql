CREATE SCHEMA app_private;

CREATE SCHEMA auth;

CREATE FUNCTION app_private.check_and_apply_activities() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
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

CREATE FUNCTION app_private.close_pauses_of_active_mentor() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
BEGIN
    UPDATE public.mentor_pause_history
    SET resumed_at = greatest(clock_timestamp(), paused_at), resumed_by = 'database:' || session_user
    WHERE mentor_id = NEW.id AND resumed_at IS NULL;
    RETURN NULL;
END
$$;

CREATE FUNCTION app_private.coordinates_mentor(mentor uuid) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
        SELECT EXISTS (
            SELECT 1 FROM public.peer_mentors m
            WHERE m.id = mentor AND m.coordinator_id = app_private.current_coordinator_id()
        )
    $$;

CREATE FUNCTION app_private.current_coordinator_id() RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$ SELECT id FROM public.coordinators WHERE auth_user_id = app_private.jwt_subject() $$;

CREATE FUNCTION app_private.current_mentor_id() RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$ SELECT id FROM public.peer_mentors WHERE auth_user_id = app_private.jwt_subject() $$;

CREATE FUNCTION app_private.expected_runs() RETURNS TABLE(job_name text, expected_at timestamp with time zone)
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'public'
    AS $$
    SELECT s.job_name, e.expected_at
    FROM public.job_schedules AS s
    CROSS JOIN LATERAL (SELECT ((now() AT TIME ZONE s.timezone)::date + s.daily_at) AT TIME ZONE s.timezone) AS t (today)
    CROSS JOIN LATERAL (
        SELECT CASE WHEN t.today <= now() - s.grace THEN t.today ELSE t.today - interval '1 day' END
    ) AS e (expected_at)
    WHERE e.expected_at >= s.watched_since
$$;

CREATE FUNCTION app_private.is_admin() RETURNS boolean
    LANGUAGE sql STABLE
    AS $$ SELECT coalesce(auth.jwt() -> 'app_metadata' ->> 'role', '') = 'admin' $$;

CREATE FUNCTION app_private.jwt_subject() RETURNS uuid
    LANGUAGE plpgsql STABLE
    AS $$
BEGIN
    RETURN (auth.jwt() ->> 'sub')::uuid;
EXCEPTION WHEN invalid_text_representation THEN
    RETURN NULL;
END
$$;

CREATE FUNCTION app_private.success_covers(job text, expected timestamp with time zone) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'public'
    AS $$
    SELECT EXISTS (SELECT 1 FROM public.cron_execution_logs AS l
                   WHERE l.job_name = job AND l.status = 'success' AND l.started_at >= expected - interval '1 minute')
$$;

CREATE FUNCTION app_private.touch_changed_at() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
BEGIN
    NEW.changed_at := clock_timestamp();
    RETURN NEW;
END
$$;

CREATE FUNCTION app_private.touch_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$;

CREATE FUNCTION app_private.within_quiet_hours(local_time time without time zone, starts time without time zone, ends time without time zone) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
        SELECT CASE WHEN starts IS NULL OR ends IS NULL OR starts = ends THEN false
                    WHEN starts < ends THEN local_time >= starts AND local_time < ends
                    ELSE local_time >= starts OR local_time < ends END
    $$;

CREATE FUNCTION auth.jwt() RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$SELECT coalesce(nullif(current_setting('request.jwt.claims', true), ''), '{}')::jsonb$$;

CREATE FUNCTION auth.uid() RETURNS uuid
    LANGUAGE sql STABLE
    AS $$SELECT nullif(auth.jwt() ->> 'sub', '')::uuid$$;

CREATE FUNCTION public.record_overdue_jobs(detector text DEFAULT 'pg_cron'::text) RETURNS TABLE(job_name text, expected_at timestamp with time zone, last_success_at timestamp with time zone)
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'public'
    AS $$
BEGIN
    UPDATE public.schedule_overdue AS o SET resolved_at = greatest(now(), o.detected_at)
    WHERE o.resolved_at IS NULL AND app_private.success_covers(o.job_name, o.expected_at);

    INSERT INTO public.schedule_overdue (job_name, expected_at, detected_by)
    SELECT e.job_name, e.expected_at, detector
    FROM app_private.expected_runs() AS e
    WHERE NOT app_private.success_covers(e.job_name, e.expected_at)
    ON CONFLICT ON CONSTRAINT schedule_overdue_pkey DO NOTHING;

    RETURN QUERY
    SELECT v.job_name, v.expected_at, v.last_success_at
    FROM public.open_schedule_overdue AS v
    ORDER BY v.job_name, v.expected_at;
END
$$;

CREATE TABLE public.activities (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    assignment_id uuid NOT NULL,
    mentor_id uuid NOT NULL,
    activity_date date NOT NULL,
    kind text DEFAULT 'contact'::text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    registration_path text DEFAULT 'direct'::text NOT NULL,
    registered_by uuid DEFAULT auth.uid(),
    CONSTRAINT activities_registration_path_check CHECK ((registration_path = ANY (ARRAY['direct'::text, 'proxy'::text, 'bulk'::text, 'coordinator_proxy'::text])))
);

COMMENT ON COLUMN public.activities.registered_by IS 'auth user id of whoever registered the activity';

CREATE TABLE public.assignments (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    mentor_id uuid NOT NULL,
    status text DEFAULT 'active'::text NOT NULL,
    assigned_at timestamp with time zone DEFAULT now() NOT NULL,
    last_contact_date date,
    closed_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    changed_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT assignments_status_check CHECK ((status = ANY (ARRAY['active'::text, 'closed'::text])))
);

CREATE TABLE public.cert_notification_log (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    mentor_id uuid NOT NULL,
    cert_id uuid NOT NULL,
    threshold_days integer NOT NULL,
    notified_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT cert_notification_log_threshold_days_check CHECK ((threshold_days > 0))
);

CREATE TABLE public.certifications (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    mentor_id uuid NOT NULL,
    certification_type text NOT NULL,
    issued_on date NOT NULL,
    expires_on date NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT certifications_check CHECK ((expires_on > issued_on))
);

CREATE TABLE public.coordinator_alerts (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    coordinator_id uuid NOT NULL,
    mentor_id uuid NOT NULL,
    kind text NOT NULL,
    message text NOT NULL,
    sync_event_id uuid,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    resolved_at timestamp with time zone,
    CONSTRAINT coordinator_alerts_kind_check CHECK ((kind = 'dynamics_sync_pending'::text))
);

CREATE TABLE public.coordinators (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    auth_user_id uuid,
    full_name text NOT NULL,
    email text,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.cron_execution_logs (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    job_name text NOT NULL,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    completed_at timestamp with time zone,
    duration_ms integer,
    assignments_evaluated integer DEFAULT 0,
    reminders_dispatched integer DEFAULT 0,
    status text NOT NULL,
    error_message text,
    consecutive_failure_count integer DEFAULT 0,
    details jsonb DEFAULT '{}'::jsonb NOT NULL,
    dagster_run_id text,
    created_at timestamp with time zone DEFAULT now(),
    CONSTRAINT cron_execution_logs_completion_check CHECK (((status = 'running'::text) = (completed_at IS NULL))),
    CONSTRAINT cron_execution_logs_status_check CHECK ((status = ANY (ARRAY['running'::text, 'success'::text, 'failed'::text, 'skipped'::text])))
);

CREATE TABLE public.dynamics_sync_events (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    mentor_id uuid NOT NULL,
    action text NOT NULL,
    payload jsonb NOT NULL,
    dedupe_key text NOT NULL,
    status text DEFAULT 'pending'::text NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    next_attempt_at timestamp with time zone DEFAULT now() NOT NULL,
    last_error text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    synced_at timestamp with time zone,
    CONSTRAINT dynamics_sync_events_action_check CHECK ((action = ANY (ARRAY['pause'::text, 'unpause'::text, 'reactivate'::text]))),
    CONSTRAINT dynamics_sync_events_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'synced'::text, 'dead'::text])))
);

CREATE TABLE public.job_schedules (
    job_name text NOT NULL,
    cron text NOT NULL,
    daily_at time without time zone NOT NULL,
    timezone text NOT NULL,
    grace interval DEFAULT '00:30:00'::interval NOT NULL,
    watched_since timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT job_schedules_cron_check CHECK ((length(cron) <= 100)),
    CONSTRAINT job_schedules_grace_check CHECK (((grace >= '00:01:00'::interval) AND (grace <= '23:00:00'::interval))),
    CONSTRAINT job_schedules_job_name_check CHECK ((job_name ~ '^[a-z][a-z0-9_]{0,62}$'::text)),
    CONSTRAINT job_schedules_timezone_check CHECK ((length(timezone) <= 64))
);

CREATE TABLE public.last_contact_corrections (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    assignment_id uuid NOT NULL,
    corrected_by uuid NOT NULL,
    corrected_at timestamp with time zone DEFAULT now() NOT NULL,
    old_value date,
    new_value date NOT NULL,
    reason text NOT NULL,
    CONSTRAINT last_contact_corrections_reason_check CHECK ((length(btrim(reason)) > 0))
);

CREATE TABLE public.mentor_pause_history (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    mentor_id uuid NOT NULL,
    reason text NOT NULL,
    paused_by text NOT NULL,
    cert_id uuid,
    paused_at timestamp with time zone DEFAULT now() NOT NULL,
    resumed_at timestamp with time zone,
    resumed_by text,
    resumed_cert_id uuid,
    CONSTRAINT mentor_pause_history_resumed_after_paused CHECK (((resumed_at IS NULL) OR (resumed_at >= paused_at))),
    CONSTRAINT mentor_pause_history_resumed_together CHECK (((resumed_at IS NULL) = (resumed_by IS NULL)))
);

CREATE TABLE public.notification_preferences (
    recipient_role text NOT NULL,
    recipient_id uuid NOT NULL,
    push_enabled boolean DEFAULT true NOT NULL,
    email_enabled boolean DEFAULT true NOT NULL,
    quiet_hours_start time without time zone,
    quiet_hours_end time without time zone,
    language text DEFAULT 'nb'::text NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT notification_preferences_language_check CHECK ((language = ANY (ARRAY['nb'::text, 'en'::text]))),
    CONSTRAINT notification_preferences_quiet_hours_check CHECK (((quiet_hours_start IS NULL) = (quiet_hours_end IS NULL))),
    CONSTRAINT notification_preferences_recipient_role_check CHECK ((recipient_role = ANY (ARRAY['mentor'::text, 'coordinator'::text])))
);

CREATE TABLE public.notifications (
    id bigint NOT NULL,
    kind text NOT NULL,
    recipient_role text NOT NULL,
    recipient_id uuid NOT NULL,
    assignment_id uuid,
    reference_date date,
    step integer,
    payload jsonb DEFAULT '{}'::jsonb NOT NULL,
    status text DEFAULT 'pending'::text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    delivered_at timestamp with time zone,
    attempts integer DEFAULT 0 NOT NULL,
    next_attempt_at timestamp with time zone DEFAULT now(),
    last_error text,
    channel text,
    message_key uuid,
    claimed_by text,
    claimed_at timestamp with time zone,
    finished_at timestamp with time zone,
    source_id uuid NOT NULL,
    CONSTRAINT notifications_attempts_check CHECK ((attempts >= 0)),
    CONSTRAINT notifications_channel_check CHECK ((channel = ANY (ARRAY['push'::text, 'email'::text]))),
    CONSTRAINT notifications_delivered_at_check CHECK (((status = 'delivered'::text) = (delivered_at IS NOT NULL))),
    CONSTRAINT notifications_last_error_check CHECK ((length(last_error) <= 500)),
    CONSTRAINT notifications_next_attempt_check CHECK (
CASE status
    WHEN 'pending'::text THEN (next_attempt_at IS NOT NULL)
    WHEN 'failed'::text THEN true
    ELSE (next_attempt_at IS NULL)
END),
    CONSTRAINT notifications_recipient_role_check CHECK ((recipient_role = ANY (ARRAY['mentor'::text, 'coordinator'::text]))),
    CONSTRAINT notifications_sending_check CHECK (((status <> 'sending'::text) OR ((claimed_by IS NOT NULL) AND (claimed_at IS NOT NULL) AND (message_key IS NOT NULL)))),
    CONSTRAINT notifications_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'sending'::text, 'delivered'::text, 'failed'::text, 'undeliverable'::text, 'expired'::text])))
);

ALTER TABLE public.notifications ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.notifications_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.schedule_overdue (
    job_name text NOT NULL,
    expected_at timestamp with time zone NOT NULL,
    detected_at timestamp with time zone DEFAULT now() NOT NULL,
    detected_by text NOT NULL,
    resolved_at timestamp with time zone,
    CONSTRAINT schedule_overdue_detected_by_check CHECK ((detected_by = ANY (ARRAY['watchdog'::text, 'pg_cron'::text]))),
    CONSTRAINT schedule_overdue_resolution_check CHECK (((resolved_at IS NULL) OR (resolved_at >= detected_at)))
);

CREATE VIEW public.open_schedule_overdue WITH (security_invoker='true') AS
 SELECT o.job_name,
    o.expected_at,
    o.detected_at,
    o.detected_by,
    s.last_success_at
   FROM (public.schedule_overdue o
     LEFT JOIN LATERAL ( SELECT max(l.started_at) AS last_success_at
           FROM public.cron_execution_logs l
          WHERE ((l.job_name = o.job_name) AND (l.status = 'success'::text))) s ON (true))
  WHERE ((o.resolved_at IS NULL) AND (NOT app_private.success_covers(o.job_name, o.expected_at)));

CREATE TABLE public.ops_alerts (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    kind text NOT NULL,
    job_name text NOT NULL,
    execution_log_id uuid,
    dagster_run_id text,
    payload jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    delivered_at timestamp with time zone,
    delivery_attempts integer DEFAULT 0 NOT NULL,
    delivery_error text,
    subject_id uuid,
    incident_key text NOT NULL,
    next_attempt_at timestamp with time zone,
    expired_at timestamp with time zone,
    resolved_at timestamp with time zone,
    CONSTRAINT ops_alerts_kind_check CHECK ((kind = ANY (ARRAY['consecutive_failures'::text, 'recovered'::text, 'long_running'::text, 'missed_run'::text, 'missed_run_recovered'::text, 'dynamics_sync_dead'::text, 'notification_delivery_gave_up'::text, 'notification_delivery_recovered'::text, 'daemon_down'::text, 'schedule_overdue'::text]))),
    CONSTRAINT ops_alerts_resolved_only_if_unsent CHECK (((resolved_at IS NULL) OR (delivered_at IS NULL)))
);

CREATE TABLE public.peer_mentors (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    auth_user_id uuid,
    coordinator_id uuid NOT NULL,
    full_name text NOT NULL,
    email text,
    phone text,
    status text DEFAULT 'active'::text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    changed_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT peer_mentors_status_check CHECK ((status = ANY (ARRAY['active'::text, 'paused'::text])))
);

CREATE TABLE public.schema_migration_checksums (
    migration_id text NOT NULL,
    sha256 text NOT NULL,
    recorded_at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE ONLY public.activities
    ADD CONSTRAINT activities_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.assignments
    ADD CONSTRAINT assignments_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.cert_notification_log
    ADD CONSTRAINT cert_notification_log_once UNIQUE (mentor_id, threshold_days, cert_id);

ALTER TABLE ONLY public.cert_notification_log
    ADD CONSTRAINT cert_notification_log_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.certifications
    ADD CONSTRAINT certifications_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.coordinator_alerts
    ADD CONSTRAINT coordinator_alerts_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.coordinators
    ADD CONSTRAINT coordinators_auth_user_id_key UNIQUE (auth_user_id);

ALTER TABLE ONLY public.coordinators
    ADD CONSTRAINT coordinators_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.cron_execution_logs
    ADD CONSTRAINT cron_execution_logs_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.dynamics_sync_events
    ADD CONSTRAINT dynamics_sync_events_dedupe_key_key UNIQUE (dedupe_key);

ALTER TABLE ONLY public.dynamics_sync_events
    ADD CONSTRAINT dynamics_sync_events_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.job_schedules
    ADD CONSTRAINT job_schedules_pkey PRIMARY KEY (job_name);

ALTER TABLE ONLY public.last_contact_corrections
    ADD CONSTRAINT last_contact_corrections_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.mentor_pause_history
    ADD CONSTRAINT mentor_pause_history_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.notification_preferences
    ADD CONSTRAINT notification_preferences_pkey PRIMARY KEY (recipient_role, recipient_id);

ALTER TABLE ONLY public.notifications
    ADD CONSTRAINT notifications_key UNIQUE NULLS NOT DISTINCT (source_id, kind, recipient_role, reference_date, step);

ALTER TABLE ONLY public.notifications
    ADD CONSTRAINT notifications_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.ops_alerts
    ADD CONSTRAINT ops_alerts_once_per_incident UNIQUE (kind, job_name, incident_key);

ALTER TABLE ONLY public.ops_alerts
    ADD CONSTRAINT ops_alerts_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.peer_mentors
    ADD CONSTRAINT peer_mentors_auth_user_id_key UNIQUE (auth_user_id);

ALTER TABLE ONLY public.peer_mentors
    ADD CONSTRAINT peer_mentors_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.schedule_overdue
    ADD CONSTRAINT schedule_overdue_pkey PRIMARY KEY (job_name, expected_at);

ALTER TABLE ONLY public.schema_migration_checksums
    ADD CONSTRAINT schema_migration_checksums_pkey PRIMARY KEY (migration_id);

CREATE INDEX activities_assignment_idx ON public.activities USING btree (assignment_id, activity_date DESC);

CREATE INDEX assignments_active_changed_idx ON public.assignments USING btree (changed_at) WHERE (status = 'active'::text);

CREATE INDEX assignments_active_idx ON public.assignments USING btree (id) WHERE (status = 'active'::text);

CREATE INDEX assignments_mentor_idx ON public.assignments USING btree (mentor_id);

CREATE INDEX certifications_mentor_idx ON public.certifications USING btree (mentor_id, expires_on DESC);

CREATE INDEX coordinator_alerts_coordinator_idx ON public.coordinator_alerts USING btree (coordinator_id, created_at DESC);

CREATE UNIQUE INDEX coordinator_alerts_one_open ON public.coordinator_alerts USING btree (mentor_id, kind) WHERE (resolved_at IS NULL);

CREATE INDEX cron_execution_logs_job_started_at_idx ON public.cron_execution_logs USING btree (job_name, started_at DESC);

CREATE UNIQUE INDEX cron_execution_logs_one_running_per_job ON public.cron_execution_logs USING btree (job_name) WHERE (status = 'running'::text);

CREATE INDEX cron_execution_logs_started_at_idx ON public.cron_execution_logs USING btree (started_at DESC);

CREATE INDEX dynamics_sync_events_due_idx ON public.dynamics_sync_events USING btree (next_attempt_at) WHERE (status = 'pending'::text);

CREATE INDEX dynamics_sync_events_mentor_idx ON public.dynamics_sync_events USING btree (mentor_id);

CREATE INDEX last_contact_corrections_assignment_idx ON public.last_contact_corrections USING btree (assignment_id, corrected_at DESC);

CREATE INDEX mentor_pause_history_mentor_idx ON public.mentor_pause_history USING btree (mentor_id, paused_at DESC);

CREATE INDEX mentor_pause_history_open_idx ON public.mentor_pause_history USING btree (mentor_id) WHERE (resumed_at IS NULL);

CREATE INDEX notifications_due_idx ON public.notifications USING btree (next_attempt_at) WHERE (status = ANY (ARRAY['pending'::text, 'failed'::text]));

CREATE INDEX notifications_finished_idx ON public.notifications USING btree (finished_at) WHERE (status = ANY (ARRAY['failed'::text, 'expired'::text]));

CREATE INDEX notifications_recipient_idx ON public.notifications USING btree (recipient_id, created_at DESC);

CREATE INDEX notifications_sending_idx ON public.notifications USING btree (message_key) WHERE (status = 'sending'::text);

CREATE INDEX ops_alerts_due_idx ON public.ops_alerts USING btree (next_attempt_at) WHERE ((delivered_at IS NULL) AND (expired_at IS NULL) AND (resolved_at IS NULL));

CREATE INDEX peer_mentors_changed_idx ON public.peer_mentors USING btree (changed_at);

CREATE INDEX peer_mentors_coordinator_idx ON public.peer_mentors USING btree (coordinator_id);

CREATE INDEX schedule_overdue_open_idx ON public.schedule_overdue USING btree (job_name) WHERE (resolved_at IS NULL);

CREATE TRIGGER activities_apply_contact_after_insert AFTER INSERT ON public.activities REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION app_private.check_and_apply_activities();

CREATE TRIGGER activities_apply_contact_after_update AFTER UPDATE ON public.activities REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION app_private.check_and_apply_activities();

CREATE TRIGGER assignments_touch_changed_at BEFORE UPDATE ON public.assignments FOR EACH ROW EXECUTE FUNCTION app_private.touch_changed_at();

CREATE TRIGGER notification_preferences_touch BEFORE UPDATE ON public.notification_preferences FOR EACH ROW EXECUTE FUNCTION app_private.touch_updated_at();

CREATE TRIGGER peer_mentors_close_pauses_on_activation AFTER UPDATE OF status ON public.peer_mentors FOR EACH ROW WHEN (((old.status = 'paused'::text) AND (new.status = 'active'::text))) EXECUTE FUNCTION app_private.close_pauses_of_active_mentor();

CREATE TRIGGER peer_mentors_touch_changed_at BEFORE UPDATE ON public.peer_mentors FOR EACH ROW EXECUTE FUNCTION app_private.touch_changed_at();

ALTER TABLE ONLY public.activities
    ADD CONSTRAINT activities_assignment_id_fkey FOREIGN KEY (assignment_id) REFERENCES public.assignments(id);

ALTER TABLE ONLY public.activities
    ADD CONSTRAINT activities_mentor_id_fkey FOREIGN KEY (mentor_id) REFERENCES public.peer_mentors(id);

ALTER TABLE ONLY public.assignments
    ADD CONSTRAINT assignments_mentor_id_fkey FOREIGN KEY (mentor_id) REFERENCES public.peer_mentors(id);

ALTER TABLE ONLY public.cert_notification_log
    ADD CONSTRAINT cert_notification_log_cert_id_fkey FOREIGN KEY (cert_id) REFERENCES public.certifications(id);

ALTER TABLE ONLY public.cert_notification_log
    ADD CONSTRAINT cert_notification_log_mentor_id_fkey FOREIGN KEY (mentor_id) REFERENCES public.peer_mentors(id);

ALTER TABLE ONLY public.certifications
    ADD CONSTRAINT certifications_mentor_id_fkey FOREIGN KEY (mentor_id) REFERENCES public.peer_mentors(id);

ALTER TABLE ONLY public.coordinator_alerts
    ADD CONSTRAINT coordinator_alerts_coordinator_id_fkey FOREIGN KEY (coordinator_id) REFERENCES public.coordinators(id);

ALTER TABLE ONLY public.coordinator_alerts
    ADD CONSTRAINT coordinator_alerts_mentor_id_fkey FOREIGN KEY (mentor_id) REFERENCES public.peer_mentors(id);

ALTER TABLE ONLY public.coordinator_alerts
    ADD CONSTRAINT coordinator_alerts_sync_event_id_fkey FOREIGN KEY (sync_event_id) REFERENCES public.dynamics_sync_events(id);

ALTER TABLE ONLY public.dynamics_sync_events
    ADD CONSTRAINT dynamics_sync_events_mentor_id_fkey FOREIGN KEY (mentor_id) REFERENCES public.peer_mentors(id);

ALTER TABLE ONLY public.last_contact_corrections
    ADD CONSTRAINT last_contact_corrections_assignment_id_fkey FOREIGN KEY (assignment_id) REFERENCES public.assignments(id);

ALTER TABLE ONLY public.mentor_pause_history
    ADD CONSTRAINT mentor_pause_history_cert_id_fkey FOREIGN KEY (cert_id) REFERENCES public.certifications(id);

ALTER TABLE ONLY public.mentor_pause_history
    ADD CONSTRAINT mentor_pause_history_mentor_id_fkey FOREIGN KEY (mentor_id) REFERENCES public.peer_mentors(id);

ALTER TABLE ONLY public.mentor_pause_history
    ADD CONSTRAINT mentor_pause_history_resumed_cert_id_fkey FOREIGN KEY (resumed_cert_id) REFERENCES public.certifications(id);

ALTER TABLE ONLY public.ops_alerts
    ADD CONSTRAINT ops_alerts_execution_log_id_fkey FOREIGN KEY (execution_log_id) REFERENCES public.cron_execution_logs(id);

ALTER TABLE ONLY public.peer_mentors
    ADD CONSTRAINT peer_mentors_coordinator_id_fkey FOREIGN KEY (coordinator_id) REFERENCES public.coordinators(id);

ALTER TABLE ONLY public.schedule_overdue
    ADD CONSTRAINT schedule_overdue_job_name_fkey FOREIGN KEY (job_name) REFERENCES public.job_schedules(job_name) ON DELETE CASCADE;

ALTER TABLE public.activities ENABLE ROW LEVEL SECURITY;

CREATE POLICY activities_insert_by_coordinator ON public.activities FOR INSERT TO authenticated WITH CHECK (((registration_path = ANY (ARRAY['proxy'::text, 'coordinator_proxy'::text])) AND (registered_by = auth.uid()) AND app_private.coordinates_mentor(mentor_id) AND (EXISTS ( SELECT 1
   FROM public.assignments a
  WHERE ((a.id = activities.assignment_id) AND (a.mentor_id = activities.mentor_id))))));

CREATE POLICY activities_insert_by_mentor ON public.activities FOR INSERT TO authenticated WITH CHECK (((registration_path = 'direct'::text) AND (registered_by = auth.uid()) AND (mentor_id = app_private.current_mentor_id()) AND (EXISTS ( SELECT 1
   FROM public.assignments a
  WHERE ((a.id = activities.assignment_id) AND (a.mentor_id = app_private.current_mentor_id()))))));

CREATE POLICY activities_read ON public.activities FOR SELECT TO authenticated USING ((app_private.is_admin() OR (mentor_id = app_private.current_mentor_id()) OR app_private.coordinates_mentor(mentor_id)));

ALTER TABLE public.assignments ENABLE ROW LEVEL SECURITY;

CREATE POLICY assignments_read ON public.assignments FOR SELECT TO authenticated USING ((app_private.is_admin() OR (mentor_id = app_private.current_mentor_id()) OR app_private.coordinates_mentor(mentor_id)));

ALTER TABLE public.cert_notification_log ENABLE ROW LEVEL SECURITY;

CREATE POLICY cert_notification_log_admin_read ON public.cert_notification_log FOR SELECT TO authenticated USING (app_private.is_admin());

ALTER TABLE public.certifications ENABLE ROW LEVEL SECURITY;

CREATE POLICY certifications_read ON public.certifications FOR SELECT TO authenticated USING ((app_private.is_admin() OR (mentor_id = app_private.current_mentor_id()) OR app_private.coordinates_mentor(mentor_id)));

ALTER TABLE public.coordinator_alerts ENABLE ROW LEVEL SECURITY;

CREATE POLICY coordinator_alerts_own ON public.coordinator_alerts FOR SELECT TO authenticated USING (((coordinator_id = app_private.current_coordinator_id()) AND app_private.coordinates_mentor(mentor_id)));

ALTER TABLE public.coordinators ENABLE ROW LEVEL SECURITY;

CREATE POLICY coordinators_read ON public.coordinators FOR SELECT TO authenticated USING ((app_private.is_admin() OR (id = app_private.current_coordinator_id())));

ALTER TABLE public.cron_execution_logs ENABLE ROW LEVEL SECURITY;

CREATE POLICY cron_execution_logs_admin_read ON public.cron_execution_logs FOR SELECT TO authenticated USING (app_private.is_admin());

ALTER TABLE public.dynamics_sync_events ENABLE ROW LEVEL SECURITY;

CREATE POLICY dynamics_sync_events_admin_read ON public.dynamics_sync_events FOR SELECT TO authenticated USING (app_private.is_admin());

ALTER TABLE public.job_schedules ENABLE ROW LEVEL SECURITY;

CREATE POLICY job_schedules_admin_read ON public.job_schedules FOR SELECT TO authenticated USING (app_private.is_admin());

ALTER TABLE public.last_contact_corrections ENABLE ROW LEVEL SECURITY;

CREATE POLICY last_contact_corrections_admin_read ON public.last_contact_corrections FOR SELECT TO authenticated USING (app_private.is_admin());

ALTER TABLE public.mentor_pause_history ENABLE ROW LEVEL SECURITY;

CREATE POLICY mentor_pause_history_read ON public.mentor_pause_history FOR SELECT TO authenticated USING ((app_private.is_admin() OR app_private.coordinates_mentor(mentor_id)));

ALTER TABLE public.notification_preferences ENABLE ROW LEVEL SECURITY;

CREATE POLICY notification_preferences_admin_read ON public.notification_preferences FOR SELECT TO authenticated USING (app_private.is_admin());

CREATE POLICY notification_preferences_own ON public.notification_preferences TO authenticated USING ((((recipient_role = 'mentor'::text) AND (recipient_id = app_private.current_mentor_id())) OR ((recipient_role = 'coordinator'::text) AND (recipient_id = app_private.current_coordinator_id())))) WITH CHECK ((((recipient_role = 'mentor'::text) AND (recipient_id = app_private.current_mentor_id())) OR ((recipient_role = 'coordinator'::text) AND (recipient_id = app_private.current_coordinator_id()))));

ALTER TABLE public.notifications ENABLE ROW LEVEL SECURITY;

CREATE POLICY notifications_read_own ON public.notifications FOR SELECT TO authenticated USING ((((recipient_role = 'mentor'::text) AND (recipient_id = app_private.current_mentor_id())) OR ((recipient_role = 'coordinator'::text) AND (recipient_id = app_private.current_coordinator_id()))));

ALTER TABLE public.ops_alerts ENABLE ROW LEVEL SECURITY;

CREATE POLICY ops_alerts_admin_read ON public.ops_alerts FOR SELECT TO authenticated USING (app_private.is_admin());

ALTER TABLE public.peer_mentors ENABLE ROW LEVEL SECURITY;

CREATE POLICY peer_mentors_read ON public.peer_mentors FOR SELECT TO authenticated USING ((app_private.is_admin() OR (id = app_private.current_mentor_id()) OR (coordinator_id = app_private.current_coordinator_id())));

ALTER TABLE public.schedule_overdue ENABLE ROW LEVEL SECURITY;

CREATE POLICY schedule_overdue_admin_read ON public.schedule_overdue FOR SELECT TO authenticated USING (app_private.is_admin());

ALTER TABLE public.schema_migration_checksums ENABLE ROW LEVEL SECURITY;

GRANT USAGE ON SCHEMA app_private TO authenticated;
GRANT USAGE ON SCHEMA app_private TO service_role;

GRANT USAGE ON SCHEMA auth TO anon;
GRANT USAGE ON SCHEMA auth TO authenticated;
GRANT USAGE ON SCHEMA auth TO service_role;

GRANT USAGE ON SCHEMA public TO anon;
GRANT USAGE ON SCHEMA public TO authenticated;
GRANT USAGE ON SCHEMA public TO service_role;

REVOKE ALL ON FUNCTION app_private.close_pauses_of_active_mentor() FROM PUBLIC;

GRANT ALL ON FUNCTION app_private.coordinates_mentor(mentor uuid) TO authenticated;
GRANT ALL ON FUNCTION app_private.coordinates_mentor(mentor uuid) TO service_role;

GRANT ALL ON FUNCTION app_private.current_coordinator_id() TO authenticated;
GRANT ALL ON FUNCTION app_private.current_coordinator_id() TO service_role;

GRANT ALL ON FUNCTION app_private.current_mentor_id() TO authenticated;
GRANT ALL ON FUNCTION app_private.current_mentor_id() TO service_role;

GRANT ALL ON FUNCTION app_private.is_admin() TO authenticated;
GRANT ALL ON FUNCTION app_private.is_admin() TO service_role;

GRANT ALL ON FUNCTION app_private.jwt_subject() TO authenticated;
GRANT ALL ON FUNCTION app_private.jwt_subject() TO service_role;

REVOKE ALL ON FUNCTION app_private.touch_changed_at() FROM PUBLIC;

GRANT ALL ON FUNCTION app_private.within_quiet_hours(local_time time without time zone, starts time without time zone, ends time without time zone) TO authenticated;
GRANT ALL ON FUNCTION app_private.within_quiet_hours(local_time time without time zone, starts time without time zone, ends time without time zone) TO service_role;

GRANT ALL ON FUNCTION auth.jwt() TO anon;
GRANT ALL ON FUNCTION auth.jwt() TO authenticated;
GRANT ALL ON FUNCTION auth.jwt() TO service_role;

GRANT ALL ON FUNCTION auth.uid() TO anon;
GRANT ALL ON FUNCTION auth.uid() TO authenticated;
GRANT ALL ON FUNCTION auth.uid() TO service_role;

REVOKE ALL ON FUNCTION public.record_overdue_jobs(detector text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.record_overdue_jobs(detector text) TO service_role;

GRANT SELECT,INSERT ON TABLE public.activities TO authenticated;
GRANT ALL ON TABLE public.activities TO service_role;

GRANT SELECT ON TABLE public.assignments TO authenticated;
GRANT ALL ON TABLE public.assignments TO service_role;

GRANT SELECT ON TABLE public.cert_notification_log TO authenticated;
GRANT ALL ON TABLE public.cert_notification_log TO service_role;

GRANT SELECT ON TABLE public.certifications TO authenticated;
GRANT ALL ON TABLE public.certifications TO service_role;

GRANT SELECT ON TABLE public.coordinator_alerts TO authenticated;
GRANT ALL ON TABLE public.coordinator_alerts TO service_role;

GRANT SELECT ON TABLE public.coordinators TO authenticated;
GRANT ALL ON TABLE public.coordinators TO service_role;

GRANT SELECT ON TABLE public.cron_execution_logs TO authenticated;
GRANT ALL ON TABLE public.cron_execution_logs TO service_role;

GRANT SELECT ON TABLE public.dynamics_sync_events TO authenticated;
GRANT ALL ON TABLE public.dynamics_sync_events TO service_role;

GRANT SELECT ON TABLE public.job_schedules TO authenticated;
GRANT ALL ON TABLE public.job_schedules TO service_role;

GRANT SELECT ON TABLE public.last_contact_corrections TO authenticated;
GRANT ALL ON TABLE public.last_contact_corrections TO service_role;

GRANT SELECT ON TABLE public.mentor_pause_history TO authenticated;
GRANT ALL ON TABLE public.mentor_pause_history TO service_role;

GRANT SELECT,INSERT,DELETE ON TABLE public.notification_preferences TO authenticated;
GRANT ALL ON TABLE public.notification_preferences TO service_role;

GRANT UPDATE(push_enabled) ON TABLE public.notification_preferences TO authenticated;

GRANT UPDATE(email_enabled) ON TABLE public.notification_preferences TO authenticated;

GRANT UPDATE(quiet_hours_start) ON TABLE public.notification_preferences TO authenticated;

GRANT UPDATE(quiet_hours_end) ON TABLE public.notification_preferences TO authenticated;

GRANT UPDATE(language) ON TABLE public.notification_preferences TO authenticated;

GRANT SELECT ON TABLE public.notifications TO authenticated;
GRANT ALL ON TABLE public.notifications TO service_role;

GRANT SELECT,USAGE ON SEQUENCE public.notifications_id_seq TO service_role;

GRANT SELECT ON TABLE public.schedule_overdue TO authenticated;
GRANT ALL ON TABLE public.schedule_overdue TO service_role;

GRANT SELECT ON TABLE public.open_schedule_overdue TO authenticated;
GRANT SELECT ON TABLE public.open_schedule_overdue TO service_role;

GRANT SELECT ON TABLE public.ops_alerts TO authenticated;
GRANT ALL ON TABLE public.ops_alerts TO service_role;

GRANT SELECT ON TABLE public.peer_mentors TO authenticated;
GRANT ALL ON TABLE public.peer_mentors TO service_role;
