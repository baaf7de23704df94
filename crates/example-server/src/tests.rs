//! Message handling, driven in-process through a session and its sink.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::session::{parse_body, Ctx, Frame, Reply, Server, Session, Sink, Transport};
use crate::{Mode, Options};

mod http;

/// A client talking to one in-process session.
struct Harness {
    session: Arc<Session>,
    sink: Sink,
    frames: mpsc::UnboundedReceiver<Frame>,
    next_id: u64,
}

/// What came back for one request: the messages sent before the reply, and
/// the reply.
struct Exchange {
    messages: Vec<Value>,
    reply: Reply,
}

impl Exchange {
    fn response(&self) -> Value {
        match &self.reply {
            Reply::Response(s) => serde_json::from_str(s).unwrap(),
            other => panic!("expected a response, got {other:?}"),
        }
    }
    fn result(&self) -> Value {
        let r = self.response();
        assert!(r.get("error").is_none(), "unexpected error: {r}");
        r["result"].clone()
    }
    fn error_code(&self) -> i64 {
        self.response()["error"]["code"].as_i64().unwrap()
    }
}

impl Harness {
    fn new(mode: Mode) -> Harness {
        Harness::with_options(mode, &Options::default())
    }

    fn with_options(mode: Mode, opts: &Options) -> Harness {
        let server = Arc::new(Server::new(mode, opts).unwrap());
        let (sink, frames) = Sink::channel();
        Harness {
            session: Session::new(server),
            sink,
            frames,
            next_id: 1,
        }
    }

    /// Another client of the same server.
    fn sibling(&self) -> Harness {
        let (sink, frames) = Sink::channel();
        Harness {
            session: Session::new(Arc::clone(&self.session.server)),
            sink,
            frames,
            next_id: 1,
        }
    }

    fn ctx(&self) -> Ctx {
        Ctx {
            sink: self.sink.clone(),
            transport: Transport::Stdio,
            headers: None,
        }
    }

    fn send(&self, text: &str) {
        self.session.server.record(text);
        let (messages, _) = parse_body(text);
        for m in messages {
            self.session.accept(m, &self.ctx());
        }
    }

    /// Sends raw text and waits for the first reply, answering any
    /// server-to-client request with `answer(method, params)`.
    async fn exchange_raw(
        &mut self,
        text: &str,
        answer: &mut dyn FnMut(&str, &Value) -> Value,
    ) -> Exchange {
        self.send(text);
        let mut messages = Vec::new();
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(5), self.frames.recv())
                .await
                .expect("no reply within 5 s")
                .expect("sink closed");
            match frame {
                Frame::Reply(reply) => return Exchange { messages, reply },
                Frame::Message(m) => {
                    let v: Value = serde_json::from_str(&m).unwrap();
                    if let (Some(id), Some(method)) = (v.get("id"), v["method"].as_str()) {
                        let result = answer(method, &v["params"]);
                        self.send(
                            &json!({ "jsonrpc": "2.0", "id": id, "result": result }).to_string(),
                        );
                    }
                    messages.push(v);
                }
            }
        }
    }

    async fn request(&mut self, method: &str, params: Value) -> Exchange {
        let id = self.next_id;
        self.next_id += 1;
        let text = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        self.exchange_raw(&text.to_string(), &mut |m, _| {
            panic!("unexpected server request {m}")
        })
        .await
    }

    async fn initialize(&mut self, version: &str) -> Value {
        let r = self
            .request(
                "initialize",
                json!({
                    "protocolVersion": version,
                    "capabilities": { "sampling": {}, "elicitation": {}, "roots": {} },
                    "clientInfo": { "name": "harness", "version": "0" },
                }),
            )
            .await
            .result();
        self.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        r
    }

    async fn call(&mut self, tool: &str, arguments: Value) -> Exchange {
        self.request(
            "tools/call",
            json!({ "name": tool, "arguments": arguments }),
        )
        .await
    }
}

fn text_of(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap()
}

#[tokio::test]
async fn initialize_negotiates_the_version() {
    let mut h = Harness::new(Mode::Demo);
    for v in ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"] {
        assert_eq!(h.initialize(v).await["protocolVersion"], v);
    }
    for v in ["1999-01-01", "2026-07-28"] {
        assert_eq!(h.initialize(v).await["protocolVersion"], "2025-11-25");
    }
    let r = h.initialize("2025-06-18").await;
    assert_eq!(r["serverInfo"]["name"], "warden-demo");
    assert!(r["instructions"]
        .as_str()
        .unwrap()
        .contains("tickets_delete"));
    assert_eq!(r["capabilities"]["resources"]["subscribe"], true);
    assert!(r["capabilities"]["completions"].is_object());

    let opts = Options {
        name: Some("custom".into()),
        record: None,
        extra_tools: None,
    };
    let mut h = Harness::with_options(Mode::Echo, &opts);
    let r = h.initialize("2025-06-18").await;
    assert_eq!(r["serverInfo"]["name"], "custom");
    assert!(r["capabilities"].get("prompts").is_none());
    assert_eq!(
        h.request("initialize", json!({})).await.error_code(),
        -32602
    );
}

#[tokio::test]
async fn protocol_errors() {
    let mut h = Harness::new(Mode::Demo);
    h.initialize("2025-06-18").await;
    assert_eq!(h.request("no/such", json!({})).await.error_code(), -32601);
    assert_eq!(h.request("ping", json!({})).await.result(), json!({}));
    let none = &mut |_: &str, _: &Value| Value::Null;
    let parse = h.exchange_raw("{not json", none).await;
    assert_eq!(parse.error_code(), -32700);
    assert_eq!(parse.response()["id"], Value::Null);
    let invalid = h.exchange_raw(r#"{"id":7,"method":"ping"}"#, none).await;
    assert_eq!(invalid.error_code(), -32600);
    assert_eq!(invalid.response()["id"], 7);
    let invalid = h.exchange_raw(r#"[1]"#, none).await;
    assert_eq!(invalid.error_code(), -32600);
    let params = h
        .exchange_raw(
            r#"{"jsonrpc":"2.0","id":"a","method":"tools/list","params":[1]}"#,
            none,
        )
        .await;
    assert_eq!(params.error_code(), -32602);
    assert_eq!(params.response()["id"], "a");
    // Echo mode has no prompts.
    let mut h = Harness::new(Mode::Echo);
    assert_eq!(
        h.request("prompts/list", json!({})).await.error_code(),
        -32601
    );
}

#[tokio::test]
async fn demo_tools_have_strict_schemas() {
    let mut h = Harness::new(Mode::Demo);
    h.initialize("2025-11-25").await;
    let tools = h.request("tools/list", json!({})).await.result()["tools"].clone();
    let names: Vec<&str> = tools
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "notes_create",
            "notes_search",
            "notes_get",
            "tickets_create",
            "tickets_list",
            "tickets_update",
            "tickets_delete"
        ]
    );
    for t in tools.as_array().unwrap() {
        assert_eq!(t["inputSchema"]["additionalProperties"], false, "{t}");
        assert!(t["annotations"].is_object());
    }
    let delete = &tools[6];
    assert_eq!(delete["annotations"]["destructiveHint"], true);
    assert_eq!(
        tools[3]["inputSchema"]["required"],
        json!(["title", "priority", "description"])
    );
}

#[tokio::test]
async fn demo_notes_and_tickets() {
    let mut h = Harness::new(Mode::Demo);
    h.initialize("2025-11-25").await;
    let created = h
        .call(
            "notes_create",
            json!({ "title": "Hello", "body": "World of notes", "tags": ["t"] }),
        )
        .await
        .result();
    assert_eq!(created["structuredContent"]["id"], "n4");
    let got = h.call("notes_get", json!({ "id": "n4" })).await.result();
    assert_eq!(got["structuredContent"]["body"], "World of notes");
    let found = h
        .call("notes_search", json!({ "query": "WORLD", "limit": 5 }))
        .await
        .result();
    assert_eq!(found["structuredContent"]["total"], 1);
    let missing = h.call("notes_get", json!({ "id": "zz" })).await.result();
    assert_eq!(missing["isError"], true);

    // Bad arguments are protocol errors.
    for bad in [
        json!({ "title": "x", "priority": "urgent", "description": "" }),
        json!({ "title": "x", "priority": "low" }),
        json!({ "title": "x", "priority": "low", "description": "", "extra": 1 }),
    ] {
        assert_eq!(h.call("tickets_create", bad).await.error_code(), -32602);
    }
    assert_eq!(h.call("no_such_tool", json!({})).await.error_code(), -32602);

    let t = h
        .call(
            "tickets_create",
            json!({ "title": "Broken", "priority": "high", "description": "It broke" }),
        )
        .await
        .result();
    let id = t["structuredContent"]["id"].as_str().unwrap().to_owned();
    assert_eq!(id, "T-105");
    let open = h
        .call("tickets_list", json!({ "status": "open" }))
        .await
        .result();
    assert_eq!(
        open["structuredContent"]["tickets"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let upd = h
        .call("tickets_update", json!({ "id": id, "status": "closed" }))
        .await
        .result();
    assert_eq!(upd["structuredContent"]["status"], "closed");
    let del = h.call("tickets_delete", json!({ "id": id })).await.result();
    assert_eq!(text_of(&del), "Deleted ticket T-105.");
    let again = h.call("tickets_delete", json!({ "id": id })).await.result();
    assert_eq!(again["isError"], true);
}

#[tokio::test]
async fn demo_resources_prompts_completions() {
    let mut h = Harness::new(Mode::Demo);
    h.initialize("2025-11-25").await;
    let list = h.request("resources/list", json!({})).await.result();
    let uris: Vec<&str> = list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uri"].as_str().unwrap())
        .collect();
    assert_eq!(
        uris,
        ["notes://n1", "notes://n2", "notes://n3", "tickets://open"]
    );
    let templates = h
        .request("resources/templates/list", json!({}))
        .await
        .result();
    assert_eq!(
        templates["resourceTemplates"][0]["uriTemplate"],
        "notes://{id}"
    );
    let note = h
        .request("resources/read", json!({ "uri": "notes://n2" }))
        .await
        .result();
    assert!(note["contents"][0]["text"]
        .as_str()
        .unwrap()
        .starts_with("# Postmortem"));
    let open = h
        .request("resources/read", json!({ "uri": "tickets://open" }))
        .await
        .result();
    let open: Value = serde_json::from_str(open["contents"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(open["tickets"].as_array().unwrap().len(), 3);
    let missing = h
        .request("resources/read", json!({ "uri": "notes://nope" }))
        .await;
    assert_eq!(missing.error_code(), -32002);

    // A subscription to the open tickets hears about changes.
    let sub = h
        .request("resources/subscribe", json!({ "uri": "tickets://open" }))
        .await;
    assert_eq!(sub.result(), json!({}));
    let (standalone, mut updates) = Sink::channel();
    h.session.open_standalone(standalone);
    h.call(
        "tickets_update",
        json!({ "id": "T-102", "status": "closed" }),
    )
    .await
    .result();
    let Some(Frame::Message(m)) = updates.recv().await else {
        panic!("no update")
    };
    assert!(m.contains("notifications/resources/updated"));

    let prompts = h.request("prompts/list", json!({})).await.result();
    assert_eq!(prompts["prompts"][0]["name"], "summarize_ticket");
    let p = h
        .request(
            "prompts/get",
            json!({ "name": "summarize_ticket", "arguments": { "ticket_id": "T-101" } }),
        )
        .await
        .result();
    assert!(p["messages"][0]["content"]["text"]
        .as_str()
        .unwrap()
        .contains("Login returns 500"));
    let p = h
        .request("prompts/get", json!({ "name": "summarize_ticket" }))
        .await;
    assert_eq!(p.error_code(), -32602);
    let p = h
        .request(
            "prompts/get",
            json!({ "name": "weekly_report", "arguments": {} }),
        )
        .await
        .result();
    assert!(p["messages"][0]["content"]["text"]
        .as_str()
        .unwrap()
        .contains("open tickets"));

    let c = h
        .request(
            "completion/complete",
            json!({
                "ref": { "type": "ref/prompt", "name": "summarize_ticket" },
                "argument": { "name": "ticket_id", "value": "t-10" },
            }),
        )
        .await
        .result();
    assert_eq!(
        c["completion"]["values"],
        json!(["T-101", "T-102", "T-103", "T-104"])
    );
    let c = h
        .request(
            "completion/complete",
            json!({
                "ref": { "type": "ref/resource", "uri": "notes://{id}" },
                "argument": { "name": "id", "value": "n3" },
            }),
        )
        .await
        .result();
    assert_eq!(c["completion"]["values"], json!(["n3"]));

    // Another session's change reaches this session's subscription too.
    let mut other = h.sibling();
    other
        .call(
            "tickets_update",
            json!({ "id": "T-101", "status": "in_progress" }),
        )
        .await
        .result();
    assert!(
        matches!(updates.recv().await, Some(Frame::Message(m)) if m.contains("tickets://open"))
    );

    // Log messages only once the client asked for them.
    let quiet = h
        .call("tickets_update", json!({ "id": "T-101", "status": "open" }))
        .await;
    assert!(quiet.messages.is_empty());
    let ok = h
        .request("logging/setLevel", json!({ "level": "notice" }))
        .await;
    assert_eq!(ok.result(), json!({}));
    let loud = h
        .call(
            "tickets_update",
            json!({ "id": "T-101", "status": "closed" }),
        )
        .await;
    assert_eq!(loud.messages[0]["method"], "notifications/message");
    assert_eq!(
        loud.messages[0]["params"]["data"],
        "ticket T-101 set to closed"
    );
    let ok = h
        .request("logging/setLevel", json!({ "level": "warning" }))
        .await;
    assert_eq!(ok.result(), json!({}));
    let quiet = h
        .call("tickets_update", json!({ "id": "T-101", "status": "open" }))
        .await;
    assert!(quiet.messages.is_empty());
    let bad = h
        .request("logging/setLevel", json!({ "level": "loud" }))
        .await;
    assert_eq!(bad.error_code(), -32602);
}

#[tokio::test]
async fn echo_mode() {
    let mut h = Harness::new(Mode::Echo);
    h.initialize("2025-06-18").await;
    let tools = h.request("tools/list", json!({})).await.result();
    assert_eq!(tools["tools"].as_array().unwrap().len(), 1);
    let r = h
        .call("echo", json!({ "message": "hi there" }))
        .await
        .result();
    assert_eq!(text_of(&r), "hi there");
    assert_eq!(h.call("echo", json!({})).await.error_code(), -32602);
    assert_eq!(
        h.call("echo", json!({ "message": "a", "b": 1 }))
            .await
            .error_code(),
        -32602
    );
    assert_eq!(h.call("other", json!({})).await.error_code(), -32602);
}

#[tokio::test]
async fn test_mode_asks_the_client() {
    let mut h = Harness::new(Mode::Test);
    h.initialize("2025-11-25").await;
    let mut asked = Vec::new();
    let mut answer = |method: &str, params: &Value| {
        asked.push((method.to_owned(), params.clone()));
        match method {
            "sampling/createMessage" => json!({
                "role": "assistant",
                "content": { "type": "text", "text": "sampled!" },
                "model": "m",
            }),
            "elicitation/create" => json!({ "action": "accept", "content": { "answer": "yes" } }),
            "roots/list" => json!({ "roots": [{ "uri": "file:///w", "name": "w" }] }),
            _ => Value::Null,
        }
    };
    let call = |tool: &str, args: Value| {
        json!({ "jsonrpc": "2.0", "id": tool, "method": "tools/call",
                "params": { "name": tool, "arguments": args } })
        .to_string()
    };
    let r = h
        .exchange_raw(&call("sample", json!({ "prompt": "hi" })), &mut answer)
        .await
        .result();
    assert_eq!(text_of(&r), "sampled!");
    let r = h
        .exchange_raw(&call("elicit", json!({ "message": "ok?" })), &mut answer)
        .await
        .result();
    assert_eq!(
        r["structuredContent"],
        json!({ "action": "accept", "content": { "answer": "yes" } })
    );
    let r = h
        .exchange_raw(&call("roots", json!({})), &mut answer)
        .await
        .result();
    assert_eq!(r["structuredContent"]["roots"][0]["uri"], "file:///w");
    assert_eq!(asked[0].1["messages"][0]["content"]["text"], "hi");
    assert_eq!(asked[1].1["requestedSchema"]["required"], json!(["answer"]));

    // A client that answers with an error gets an isError result.
    let text = call("sample", json!({ "prompt": "x" }));
    h.send(&text);
    let Some(Frame::Message(m)) = h.frames.recv().await else {
        panic!()
    };
    let req: Value = serde_json::from_str(&m).unwrap();
    h.send(
        &json!({ "jsonrpc": "2.0", "id": req["id"], "error": { "code": -1, "message": "user declined" } })
            .to_string(),
    );
    let Some(Frame::Reply(Reply::Response(r))) = h.frames.recv().await else {
        panic!()
    };
    let r: Value = serde_json::from_str(&r).unwrap();
    assert_eq!(r["result"]["isError"], true);
    assert!(text_of(&r["result"]).contains("user declined"));
}

#[tokio::test]
async fn test_mode_progress_and_list_changed() {
    let mut h = Harness::new(Mode::Test);
    h.initialize("2025-11-25").await;
    let ex = h
        .request(
            "tools/call",
            json!({ "name": "progress", "arguments": { "steps": 3 }, "_meta": { "progressToken": "tok" } }),
        )
        .await;
    assert_eq!(ex.messages.len(), 3);
    assert_eq!(ex.messages[2]["method"], "notifications/progress");
    assert_eq!(ex.messages[2]["params"]["progressToken"], "tok");
    assert_eq!(ex.messages[2]["params"]["progress"], 3);
    assert_eq!(text_of(&ex.result()), "done 3 steps");
    // Without a token there is nothing to report progress against.
    let ex = h.call("progress", json!({ "steps": 2 })).await;
    assert!(ex.messages.is_empty());

    let before = h.request("tools/list", json!({})).await.result();
    let ex = h.call("change_tools", json!({})).await;
    assert_eq!(ex.messages[0]["method"], "notifications/tools/list_changed");
    let after = h.request("tools/list", json!({})).await.result();
    assert_ne!(
        before["tools"][0]["description"],
        after["tools"][0]["description"]
    );
    assert_eq!(after["tools"][0]["name"], "echo");
}

#[tokio::test]
async fn test_mode_hostile_tools() {
    let mut h = Harness::new(Mode::Test);
    h.initialize("2025-11-25").await;
    assert!(matches!(
        h.call("crash", json!({})).await.reply,
        Reply::Crash
    ));
    assert!(
        matches!(h.call("garbage", json!({})).await.reply, Reply::Garbage(s) if serde_json::from_str::<Value>(&s).is_err())
    );
    let big = h.call("big", json!({ "bytes": 100_000 })).await.result();
    assert_eq!(text_of(&big).len(), 100_000);
    let leak = h.call("leak_error", json!({})).await.response();
    assert!(leak["error"]["message"]
        .as_str()
        .unwrap()
        .contains("at /srv/app/internal.py line 42"));
    let who = h.call("whoami", json!({})).await.result();
    assert_eq!(who["structuredContent"]["pid"], std::process::id());
    assert_eq!(who["structuredContent"]["initializeCount"], 1);
    assert_eq!(
        who["structuredContent"]["clientCapabilities"]["roots"],
        json!({})
    );
    let slow = h.call("slow", json!({ "ms": 10 })).await.result();
    assert_eq!(text_of(&slow), "slept 10 ms");
    let stderr = h.call("stderr", json!({ "text": "a\nb" })).await.result();
    assert_eq!(text_of(&stderr), "wrote 2 lines to stderr");
    let headers = h.call("echo_headers", json!({})).await.result();
    assert_eq!(headers["isError"], true);
    assert_eq!(h.call("slow", json!({})).await.error_code(), -32602);

    // A hung call is cancelled by notifications/cancelled.
    h.send(r#"{"jsonrpc":"2.0","id":"h","method":"tools/call","params":{"name":"hang"}}"#);
    tokio::task::yield_now().await;
    h.send(r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"h"}}"#);
    let r = h.call("echo", json!({ "message": "after" })).await.result();
    assert_eq!(text_of(&r), "after");
    assert_eq!(h.session.running_count(), 0);

    let prompt = h
        .request(
            "prompts/get",
            json!({ "name": "test_prompt", "arguments": { "topic": "x" } }),
        )
        .await
        .result();
    assert_eq!(prompt["messages"][0]["content"]["text"], "Talk about x.");
    let res = h
        .request("resources/read", json!({ "uri": "test://resource" }))
        .await
        .result();
    assert_eq!(res["contents"][0]["text"], "test resource contents");
}

#[tokio::test]
async fn record_appends_every_received_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rec.jsonl");
    let opts = Options {
        record: Some(path.clone()),
        name: None,
        extra_tools: None,
    };
    let mut h = Harness::with_options(Mode::Test, &opts);
    h.initialize("2025-06-18").await;
    let none = &mut |_: &str, _: &Value| Value::Null;
    h.exchange_raw("{\n  \"garbled", none).await;
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].contains("\"initialize\""));
    assert!(lines[1].contains("notifications/initialized"));
    assert_eq!(lines[2], "{   \"garbled");
}

#[tokio::test]
async fn stdio_transport_round_trip() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let server = Arc::new(Server::new(Mode::Echo, &Options::default()).unwrap());
    let (client_end, server_end) = tokio::io::duplex(1 << 16);
    let (server_read, server_write) = tokio::io::split(server_end);
    let serve = tokio::spawn(crate::stdio::serve(server, server_read, server_write));
    let (client_read, mut client_write) = tokio::io::split(client_end);
    let mut lines = BufReader::new(client_read).lines();
    client_write
        .write_all(
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"2024-11-05\",\"capabilities\":{},\"clientInfo\":{\"name\":\"t\",\"version\":\"0\"}}}\n\
              {\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n\
              \n\
              {\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"arguments\":{\"message\":\"line\"}}}\n",
        )
        .await
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..2 {
        let line = lines.next_line().await.unwrap().unwrap();
        got.push(serde_json::from_str::<Value>(&line).unwrap());
    }
    got.sort_by_key(|v| v["id"].as_u64());
    assert_eq!(got[0]["result"]["protocolVersion"], "2024-11-05");
    assert_eq!(got[1]["result"]["content"][0]["text"], "line");
    drop(client_write);
    drop(lines);
    tokio::time::timeout(Duration::from_secs(5), serve)
        .await
        .expect("serve ends when input closes")
        .unwrap()
        .ok();
}
