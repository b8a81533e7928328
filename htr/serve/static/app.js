// Front end of `htr serve`: upload one image, show its transcription, boxes and n-best.
// Server strings are only ever written with textContent / setAttribute (no innerHTML).
'use strict';

const $ = (id) => document.getElementById(id);
const SVG_NS = 'http://www.w3.org/2000/svg';
const els = {
  model: $('model'), limits: $('limits'), drop: $('drop'), file: $('file'), status: $('status'),
  text: $('text'), preview: $('preview'), overlay: $('overlay'), show: $('show'),
  nbest: $('nbest').tBodies[0], download: $('download-json'),
};
let previewUrl = null;   // object URLs are revoked when replaced, so repeated uploads don't leak
let downloadUrl = null;
let requestId = 0;       // only the latest upload may update the page (a slow earlier one is ignored)

function formatBytes(n) {
  const units = ['B', 'KB', 'MB', 'GB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${Math.round(n * 10) / 10} ${units[i]}`;
}

function setStatus(message, isError) {
  els.status.textContent = message;
  els.status.classList.toggle('error', Boolean(isError));
}

// hsl hue 0 (red) at confidence 0 .. 120 (green) at confidence 1.
function confidenceColour(c, alpha) {
  const hue = Math.round(120 * Math.min(1, Math.max(0, Number(c) || 0)));
  return alpha === undefined ? `hsl(${hue}, 75%, 38%)` : `hsla(${hue}, 75%, 50%, ${alpha})`;
}

async function loadInfo() {
  try {
    const res = await fetch('/info');
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const info = await res.json();
    els.model.textContent = info.model || '(unknown model)';
    if (info.decoding) els.model.title = `decoding: ${JSON.stringify(info.decoding)}`;
    const lim = info.limits || {};
    const parts = [];
    if (lim.max_upload_bytes) parts.push(`max ${formatBytes(lim.max_upload_bytes)}`);
    if (lim.max_image_pixels) parts.push(`${Math.round(lim.max_image_pixels / 1e5) / 10} Mpixel`);
    els.limits.textContent = parts.length ? `(${parts.join(', ')})` : '';
  } catch (err) {
    els.model.textContent = `(server info unavailable: ${err.message})`;
  }
}

function clearResults() {
  els.overlay.replaceChildren();
  els.nbest.replaceChildren();
  els.download.hidden = true;
  els.download.removeAttribute('href');
  if (downloadUrl) { URL.revokeObjectURL(downloadUrl); downloadUrl = null; }
}

function addBox(cls, x, label, confidence, height) {
  const x0 = Number(x[0]), x1 = Number(x[1]);
  const rect = document.createElementNS(SVG_NS, 'rect');
  rect.setAttribute('class', `box ${cls}`);
  rect.setAttribute('x', x0);
  rect.setAttribute('y', 0);
  rect.setAttribute('width', Math.max(0, x1 - x0));
  rect.setAttribute('height', height);
  rect.setAttribute('fill', confidenceColour(confidence, 0.22));
  rect.setAttribute('stroke', confidenceColour(confidence));
  // Keep the outline ~1.5 screen pixels whatever the image is scaled to.
  rect.setAttribute('vector-effect', 'non-scaling-stroke');
  const title = document.createElementNS(SVG_NS, 'title');
  title.textContent = `"${label}" ${(Number(confidence) || 0).toFixed(2)}`;
  rect.appendChild(title);
  els.overlay.appendChild(rect);
}

function render(result, file) {
  const W = Number(result.width) || els.preview.naturalWidth || 1;
  const H = Number(result.height) || els.preview.naturalHeight || 1;
  els.overlay.setAttribute('viewBox', `0 0 ${W} ${H}`);
  for (const c of result.characters || []) addBox('char', c.x, c.char, c.confidence, H);
  for (const w of result.words || []) addBox('word', w.x, w.text, w.confidence, H);

  const nbest = result.nbest || [];
  els.text.classList.toggle('empty', nbest.length === 0);
  els.text.textContent = nbest.length ? nbest[0].text : '(no text: the image is too short to read)';
  nbest.forEach((hyp, i) => {
    const row = els.nbest.insertRow();
    const rank = row.insertCell(); rank.textContent = String(i + 1); rank.className = 'num';
    const text = row.insertCell(); text.textContent = hyp.text; text.className = 'text';
    const score = row.insertCell(); score.className = 'num';
    score.textContent = typeof hyp.score === 'number' ? hyp.score.toFixed(2) : '';
    if (hyp.scores) {
      score.title = Object.entries(hyp.scores)
        .map(([k, v]) => `${k}: ${typeof v === 'number' ? v.toFixed(2) : v}`).join(', ');
    }
  });

  const stem = (result.image || file.name).replace(/^.*[\\/]/, '').replace(/\.[^.]*$/, '') || 'result';
  downloadUrl = URL.createObjectURL(
    new Blob([JSON.stringify(result, null, 2) + '\n'], { type: 'application/json' }));
  els.download.href = downloadUrl;
  els.download.download = `${stem}.json`;
  els.download.hidden = false;
}

async function upload(file) {
  if (!file) return;
  const id = ++requestId;
  clearResults();
  els.text.dataset.state = 'pending';
  els.text.classList.remove('empty');
  els.text.textContent = '…';
  setStatus(`Recognising ${file.name}…`);
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = URL.createObjectURL(file);
  els.preview.src = previewUrl;
  els.preview.alt = `Uploaded image ${file.name}`;
  els.preview.hidden = false;

  const form = new FormData();
  form.append('image', file, file.name);
  const t0 = performance.now();
  try {
    let res;
    try {
      res = await fetch('/recognize', { method: 'POST', body: form });
    } catch (err) {
      throw new Error(`Network error: could not reach the server (${err.message})`);
    }
    // Error bodies should be {"error": ...}, but a proxy may answer with HTML: fall back to the status.
    let body = null;
    try { body = await res.json(); } catch (_) { /* not JSON */ }
    if (!res.ok || !body || body.error) {
      throw new Error((body && body.error) || `Server error ${res.status} ${res.statusText}`.trim());
    }
    if (id !== requestId) return;
    render(body, file);
    setStatus(`Recognised in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
    els.text.dataset.state = 'done';
  } catch (err) {
    if (id !== requestId) return;
    clearResults();
    setStatus(err.message, true);
    els.text.textContent = 'Recognition failed.';
    els.text.dataset.state = 'error';
  }
}

els.file.addEventListener('change', () => {
  upload(els.file.files[0]);
  els.file.value = '';   // so choosing the same file again still fires "change"
});

// Drag and drop: preventDefault stops the browser from navigating to the dropped file.
['dragenter', 'dragover'].forEach((type) => els.drop.addEventListener(type, (e) => {
  e.preventDefault();
  els.drop.classList.add('dragover');
}));
['dragleave', 'drop'].forEach((type) => els.drop.addEventListener(type, (e) => {
  e.preventDefault();
  els.drop.classList.remove('dragover');
}));
els.drop.addEventListener('drop', (e) => {
  const file = e.dataTransfer && e.dataTransfer.files[0];
  if (file) upload(file);
});

els.show.addEventListener('change', () => {
  els.overlay.classList.toggle('show-characters', els.show.value === 'characters');
  els.overlay.classList.toggle('show-words', els.show.value === 'words');
});

loadInfo();
