// The stateful part of the local Azure-like upstream: files, batches, fine-tuning jobs,
// assistants, threads, vector stores, models, and multipart parsing. Azure
// serves these under /openai/<path> (dated API) and /openai/v1/<path> (v1 API).

import crypto from 'node:crypto';

const now = () => Math.floor(Date.now() / 1000);
const newId = (prefix) => `${prefix}${crypto.randomBytes(8).toString('hex')}`;

// multipart/form-data -> { fields: {name: string}, files: {name: {filename, type, data}} }
export function parseMultipart(body, contentType) {
  const match = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType || '');
  if (!match) return null;
  const delimiter = Buffer.from(`--${match[1] || match[2]}`);
  const result = { fields: {}, files: {} };
  let at = body.indexOf(delimiter);
  while (at >= 0) {
    const start = at + delimiter.length;
    if (body.slice(start, start + 2).toString() === '--') break;
    const next = body.indexOf(delimiter, start);
    if (next < 0) return null;
    const part = body.slice(start + 2, next - 2);  // without the CRLFs around it
    const split = part.indexOf('\r\n\r\n');
    if (split < 0) return null;
    const headers = part.slice(0, split).toString();
    const data = part.slice(split + 4);
    const name = /name="([^"]*)"/i.exec(headers)?.[1];
    const filename = /filename="([^"]*)"/i.exec(headers)?.[1];
    const type = /content-type:\s*([^\r\n]+)/i.exec(headers)?.[1] || 'application/octet-stream';
    if (name !== undefined) {
      if (filename !== undefined) result.files[name] = { filename, type, data };
      else result.fields[name] = data.toString();
    }
    at = next;
  }
  return result;
}

function page(data) {
  return { object: 'list', data, first_id: data[0]?.id ?? null, last_id: data[data.length - 1]?.id ?? null, has_more: false };
}

const BASE_MODELS = [
  { id: 'gpt-4o-2024-08-06', created_at: 1722902400 },
  { id: 'gpt-4.1-2025-04-14', created_at: 1744588800 },
  { id: 'text-embedding-3-small', created_at: 1705948800 },
  { id: 'whisper', created_at: 1696118400 },
];

// Returns a handler for the non-deployment paths; `reply(status, body, headers)`.
export function createResources({ isDeployment }) {
  const store = { files: new Map(), batches: new Map(), jobs: new Map(), assistants: new Map(), threads: new Map(), messages: new Map(), runs: new Map(), vectorStores: new Map() };

  function notFound(reply, what) {
    return reply(404, { error: { code: 'NotFound', message: `${what} not found.` } });
  }

  // `path` is below /openai or /openai/v1, e.g. "/files/file-1/content".
  return async function serve({ method, path, json, form, reply, stream, replyText }) {
    let m;
    // models
    if (method === 'GET' && path === '/models')
      return reply(200, { object: 'list', data: BASE_MODELS.map((x) => ({ ...x, object: 'model', status: 'succeeded', capabilities: { chat_completion: true } })) });
    if (method === 'GET' && (m = path.match(/^\/models\/([^/]+)$/))) {
      const model = BASE_MODELS.find((x) => x.id === decodeURIComponent(m[1]));
      return model ? reply(200, { ...model, object: 'model', status: 'succeeded' }) : notFound(reply, 'Model');
    }
    // files
    if (method === 'POST' && path === '/files') {
      if (!form || !form.files.file || !form.fields.purpose) return reply(400, { error: { code: 'invalidPayload', message: "'file' and 'purpose' are required" } });
      const file = { id: newId('file-'), object: 'file', bytes: form.files.file.data.length, created_at: now(), filename: form.files.file.filename, purpose: form.fields.purpose, status: 'processed' };
      store.files.set(file.id, { file, data: form.files.file.data, type: form.files.file.type });
      return reply(200, file);
    }
    if (method === 'GET' && path === '/files') return reply(200, page([...store.files.values()].map((f) => f.file)));
    if ((m = path.match(/^\/files\/([^/]+)(\/content)?$/))) {
      const entry = store.files.get(m[1]);
      if (!entry) return notFound(reply, 'File');
      if (method === 'GET' && m[2]) return replyText(200, entry.data, { 'content-type': 'application/octet-stream' });
      if (method === 'GET') return reply(200, entry.file);
      if (method === 'DELETE') { store.files.delete(m[1]); return reply(200, { id: m[1], object: 'file', deleted: true }); }
    }
    // batches
    if (method === 'POST' && path === '/batches') {
      if (!json?.input_file_id || !store.files.has(json.input_file_id)) return reply(400, { error: { code: 'invalidPayload', message: 'input_file_id must name an uploaded file' } });
      const batch = { id: newId('batch_'), object: 'batch', endpoint: json.endpoint, input_file_id: json.input_file_id, completion_window: json.completion_window, status: 'validating', created_at: now(), request_counts: { total: 0, completed: 0, failed: 0 } };
      store.batches.set(batch.id, batch);
      return reply(200, batch);
    }
    if (method === 'GET' && path === '/batches') return reply(200, page([...store.batches.values()]));
    if ((m = path.match(/^\/batches\/([^/]+)(\/cancel)?$/))) {
      const batch = store.batches.get(m[1]);
      if (!batch) return notFound(reply, 'Batch');
      if (method === 'POST' && m[2]) { batch.status = 'cancelling'; return reply(200, batch); }
      if (method === 'GET' && !m[2]) return reply(200, batch);
    }
    // fine-tuning
    if (method === 'POST' && path === '/fine_tuning/jobs') {
      const job = { id: newId('ftjob-'), object: 'fine_tuning.job', model: json?.model, training_file: json?.training_file, status: 'pending', created_at: now(), hyperparameters: { n_epochs: 'auto' }, result_files: [], seed: 0, trained_tokens: null, fine_tuned_model: null, error: null, finished_at: null, organization_id: 'org', validation_file: null };
      store.jobs.set(job.id, job);
      return reply(200, job);
    }
    if (method === 'GET' && path === '/fine_tuning/jobs') return reply(200, page([...store.jobs.values()]));
    if ((m = path.match(/^\/fine_tuning\/jobs\/([^/]+)(?:\/(cancel|events|checkpoints))?$/))) {
      const job = store.jobs.get(m[1]);
      if (!job) return notFound(reply, 'Fine-tuning job');
      if (method === 'POST' && m[2] === 'cancel') { job.status = 'cancelled'; return reply(200, job); }
      if (method === 'GET' && m[2] === 'events') return reply(200, page([{ id: 'ftevent-1', object: 'fine_tuning.job.event', created_at: job.created_at, level: 'info', message: 'Job enqueued' }]));
      if (method === 'GET' && m[2] === 'checkpoints') return reply(200, page([{ id: 'ftckpt-1', object: 'fine_tuning.job.checkpoint', created_at: job.created_at, fine_tuned_model_checkpoint: `${job.model}:ckpt-1`, fine_tuning_job_id: job.id, metrics: {}, step_number: 10 }]));
      if (method === 'GET' && !m[2]) return reply(200, job);
    }
    // assistants (the body's model is a deployment name)
    if (method === 'POST' && path === '/assistants') {
      if (!isDeployment(json?.model)) return reply(404, { error: { code: 'DeploymentNotFound', message: `The API deployment ${json?.model} does not exist.` } });
      const assistant = { id: newId('asst_'), object: 'assistant', created_at: now(), name: json.name ?? null, model: json.model, instructions: json.instructions ?? null, tools: json.tools ?? [], metadata: {} };
      store.assistants.set(assistant.id, assistant);
      return reply(200, assistant);
    }
    if (method === 'GET' && path === '/assistants') return reply(200, page([...store.assistants.values()]));
    if ((m = path.match(/^\/assistants\/([^/]+)$/))) {
      const assistant = store.assistants.get(m[1]);
      if (!assistant) return notFound(reply, 'Assistant');
      if (method === 'GET') return reply(200, assistant);
      if (method === 'DELETE') { store.assistants.delete(m[1]); return reply(200, { id: m[1], object: 'assistant.deleted', deleted: true }); }
    }
    // threads, messages, runs
    if (method === 'POST' && path === '/threads') {
      const thread = { id: newId('thread_'), object: 'thread', created_at: now(), metadata: {} };
      store.threads.set(thread.id, thread);
      store.messages.set(thread.id, []);
      return reply(200, thread);
    }
    if ((m = path.match(/^\/threads\/([^/]+)\/messages$/))) {
      if (!store.threads.has(m[1])) return notFound(reply, 'Thread');
      if (method === 'POST') {
        const message = { id: newId('msg_'), object: 'thread.message', created_at: now(), thread_id: m[1], role: json.role, content: [{ type: 'text', text: { value: json.content, annotations: [] } }], metadata: {} };
        store.messages.get(m[1]).push(message);
        return reply(200, message);
      }
      if (method === 'GET') return reply(200, page(store.messages.get(m[1])));
    }
    if (method === 'POST' && (m = path.match(/^\/threads\/([^/]+)\/runs$/))) {
      const assistant = store.assistants.get(json?.assistant_id);
      if (!store.threads.has(m[1]) || !assistant) return notFound(reply, 'Thread or assistant');
      const run = { id: newId('run_'), object: 'thread.run', created_at: now(), thread_id: m[1], assistant_id: assistant.id, model: assistant.model, status: 'completed', tools: [], instructions: assistant.instructions };
      store.runs.set(run.id, run);
      store.messages.get(m[1]).push({ id: newId('msg_'), object: 'thread.message', created_at: now(), thread_id: m[1], role: 'assistant', run_id: run.id, content: [{ type: 'text', text: { value: 'Hello from the mock assistant!', annotations: [] } }], metadata: {} });
      return reply(200, run);
    }
    if (method === 'GET' && (m = path.match(/^\/threads\/([^/]+)\/runs\/([^/]+)$/))) {
      const run = store.runs.get(m[2]);
      return run ? reply(200, run) : notFound(reply, 'Run');
    }
    // vector stores
    if (method === 'POST' && path === '/vector_stores') {
      const vs = { id: newId('vs_'), object: 'vector_store', created_at: now(), name: json?.name ?? null, status: 'completed', file_counts: { in_progress: 0, completed: 0, failed: 0, cancelled: 0, total: 0 }, usage_bytes: 0, metadata: {} };
      store.vectorStores.set(vs.id, vs);
      return reply(200, vs);
    }
    if (method === 'GET' && path === '/vector_stores') return reply(200, page([...store.vectorStores.values()]));
    return null;  // not a path this upstream knows
  };
}
