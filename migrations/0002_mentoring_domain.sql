-- Coordinators, peer mentors, their assignments, logged activities and the notification outbox.

CREATE TABLE public.coordinators (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    auth_user_id uuid UNIQUE,
    full_name    text NOT NULL,
    email        text,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE public.peer_mentors (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    auth_user_id   uuid UNIQUE,
    coordinator_id uuid NOT NULL REFERENCES public.coordinators (id),
    full_name      text NOT NULL,
    email          text,
    phone          text,
    status         text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused')),
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX peer_mentors_coordinator_idx ON public.peer_mentors (coordinator_id);

CREATE TABLE public.assignments (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    mentor_id         uuid NOT NULL REFERENCES public.peer_mentors (id),
    status            text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'closed')),
    assigned_at       timestamptz NOT NULL DEFAULT now(),
    last_contact_date date,
    closed_at         timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX assignments_mentor_idx ON public.assignments (mentor_id);
-- The reminder job reads active assignments only.
CREATE INDEX assignments_active_idx ON public.assignments (id) WHERE status = 'active';

CREATE TABLE public.activities (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    assignment_id uuid NOT NULL REFERENCES public.assignments (id),
    mentor_id     uuid NOT NULL REFERENCES public.peer_mentors (id),
    activity_date date NOT NULL,
    kind          text NOT NULL DEFAULT 'contact',
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX activities_assignment_idx ON public.activities (assignment_id, activity_date DESC);

-- The dispatch outbox. The unique idempotency key is what makes "never twice" hold for reruns
-- and for overlapping runs alike.
CREATE TABLE public.notifications (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    idempotency_key text NOT NULL,
    kind            text NOT NULL,
    recipient_role  text NOT NULL CHECK (recipient_role IN ('mentor', 'coordinator')),
    recipient_id    uuid NOT NULL,
    assignment_id   uuid REFERENCES public.assignments (id),
    reference_date  date,
    step            integer,
    payload         jsonb NOT NULL DEFAULT '{}'::jsonb,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    CONSTRAINT notifications_idempotency_key_key UNIQUE (idempotency_key)
);
CREATE INDEX notifications_recipient_idx ON public.notifications (recipient_id, created_at DESC);

-- Row-level security: every public table is reachable through Supabase's REST API.
ALTER TABLE public.coordinators  ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.peer_mentors  ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.assignments   ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.activities    ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.notifications ENABLE ROW LEVEL SECURITY;

CREATE FUNCTION app_private.current_coordinator_id() RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = ''
    AS $$ SELECT id FROM public.coordinators WHERE auth_user_id = app_private.jwt_subject() $$;

CREATE FUNCTION app_private.current_mentor_id() RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = ''
    AS $$ SELECT id FROM public.peer_mentors WHERE auth_user_id = app_private.jwt_subject() $$;

CREATE FUNCTION app_private.coordinates_mentor(mentor uuid) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = ''
    AS $$
        SELECT EXISTS (
            SELECT 1 FROM public.peer_mentors m
            WHERE m.id = mentor AND m.coordinator_id = app_private.current_coordinator_id()
        )
    $$;

GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA app_private TO authenticated, service_role;

CREATE POLICY coordinators_read ON public.coordinators FOR SELECT TO authenticated
    USING (app_private.is_admin() OR id = app_private.current_coordinator_id());

CREATE POLICY peer_mentors_read ON public.peer_mentors FOR SELECT TO authenticated
    USING (app_private.is_admin()
           OR id = app_private.current_mentor_id()
           OR coordinator_id = app_private.current_coordinator_id());

CREATE POLICY assignments_read ON public.assignments FOR SELECT TO authenticated
    USING (app_private.is_admin()
           OR mentor_id = app_private.current_mentor_id()
           OR app_private.coordinates_mentor(mentor_id));

CREATE POLICY activities_read ON public.activities FOR SELECT TO authenticated
    USING (app_private.is_admin()
           OR mentor_id = app_private.current_mentor_id()
           OR app_private.coordinates_mentor(mentor_id));

-- Mentors log their own contacts from the app.
CREATE POLICY activities_insert_own ON public.activities FOR INSERT TO authenticated
    WITH CHECK (mentor_id = app_private.current_mentor_id()
                AND EXISTS (SELECT 1 FROM public.assignments a
                            WHERE a.id = assignment_id AND a.mentor_id = app_private.current_mentor_id()));

CREATE POLICY notifications_read_own ON public.notifications FOR SELECT TO authenticated
    USING ((recipient_role = 'mentor' AND recipient_id = app_private.current_mentor_id())
           OR (recipient_role = 'coordinator' AND recipient_id = app_private.current_coordinator_id()));

REVOKE ALL ON public.coordinators, public.peer_mentors, public.assignments, public.activities,
    public.notifications FROM anon, authenticated;
GRANT SELECT ON public.coordinators, public.peer_mentors, public.assignments, public.activities,
    public.notifications TO authenticated;
GRANT INSERT ON public.activities TO authenticated;
GRANT ALL ON public.coordinators, public.peer_mentors, public.assignments, public.activities,
    public.notifications TO service_role;
GRANT USAGE, SELECT ON SEQUENCE public.notifications_id_seq TO service_role;
