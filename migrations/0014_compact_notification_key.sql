-- A notification is identified by what it is about, not by an ~80-byte text key: the source row
-- (`source_id`: the assignment, certification or pause), its kind, its recipient's role, and for a
-- recurring notice its period (`reference_date`) and step. The same notifications stay unique
-- (docs/scaling.md, "The outbox's key"); the index is a third of the text key's, and writing a
-- million notifications costs half as much.
--
-- Each existing row's key is taken from its text key, kind by kind, so that a rerun after this
-- migration finds every notification already created and sends nothing twice:
--   <assignment>:<kind>:<reference date>:<step>    source = the assignment
--   certification_expiry:<certification>:<days>    source = the certification, step = days
--   <kind>:<role>:<mentor>:<certification|pause>   source = the certification or the pause
-- A row of any other shape (made by hand: no code writes one) keeps a key of its own (source =
-- md5 of its text key), which no run will produce again.
ALTER TABLE public.notifications ADD COLUMN source_id uuid;

UPDATE public.notifications AS n SET
    source_id = CASE
        -- (its text key was made of these columns; a row with another text key but the same
        -- columns would collide with one that has it, and the migration then fails: see below)
        WHEN n.kind IN ('assignment_follow_up_reminder', 'assignment_follow_up_escalation')
             AND n.assignment_id IS NOT NULL AND n.reference_date IS NOT NULL AND n.step IS NOT NULL
            THEN n.assignment_id
        WHEN n.kind = 'certification_expiry_reminder'
             AND n.idempotency_key ~ '^certification_expiry:[0-9a-f-]{36}:[0-9]+$'
             AND split_part(n.idempotency_key, ':', 3)::integer IS NOT DISTINCT FROM n.step
            THEN split_part(n.idempotency_key, ':', 2)::uuid
        WHEN n.kind IN ('mentor_auto_paused', 'mentor_reactivated')
             AND n.idempotency_key ~ ('^' || n.kind || ':' || n.recipient_role || ':[0-9a-f-]{36}:[0-9a-f-]{36}$')
             AND n.reference_date IS NULL AND n.step IS NULL
            THEN split_part(n.idempotency_key, ':', 4)::uuid
        ELSE md5(n.idempotency_key)::uuid
    END,
    -- An expiry notice is one per (certification, threshold): the expiry date is its payload's.
    reference_date = CASE WHEN n.kind = 'certification_expiry_reminder' THEN NULL ELSE n.reference_date END;

ALTER TABLE public.notifications ALTER COLUMN source_id SET NOT NULL;
-- Fails (and the whole migration with it) if two rows would share a key: nothing is merged silently.
ALTER TABLE public.notifications
    ADD CONSTRAINT notifications_key UNIQUE NULLS NOT DISTINCT (source_id, kind, recipient_role, reference_date, step);
ALTER TABLE public.notifications DROP CONSTRAINT notifications_idempotency_key_key;
ALTER TABLE public.notifications DROP COLUMN idempotency_key;

-- The foreign key to assignments cost as much as every other constraint together (a KEY SHARE lock
-- on each assignment a notification names) and guarded nothing a reader needs: a reminder about an
-- assignment that no longer exists counts as ended and is never sent (CONTACT_GAP_ENDED).
ALTER TABLE public.notifications DROP CONSTRAINT notifications_assignment_id_fkey;
