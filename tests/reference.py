"""NumPy implementations of the textbook recurrences, written from the equations
(Elman 1990; Hochreiter & Schmidhuber 1997 with a forget gate; Cho et al. 2014 and
PyTorch's GRU), one time step at a time, with separately named per-gate weights."""

import numpy as np


def sigmoid(a):
  return 1.0 / (1.0 + np.exp(-a))


def gates(params, n):
  """Split fused [.., n*H] weights into n per-gate blocks."""
  return {name: np.split(np.asarray(value), n, axis=-1) for name, value in params.items()}


def elman_step(p, h, x, activation):
  a = x @ p["input_kernel"] + p["bias"] + h @ p["recurrent_kernel"]
  return np.tanh(a) if activation == "tanh" else np.maximum(a, 0.0)


def lstm_step(p, c, h, x):
  (W_xi, W_xf, W_xg, W_xo), (W_hi, W_hf, W_hg, W_ho) = p["input_kernel"], p["recurrent_kernel"]
  b_i, b_f, b_g, b_o = p["bias"]
  i = sigmoid(x @ W_xi + b_i + h @ W_hi)
  f = sigmoid(x @ W_xf + b_f + h @ W_hf)
  g = np.tanh(x @ W_xg + b_g + h @ W_hg)
  o = sigmoid(x @ W_xo + b_o + h @ W_ho)
  c = f * c + i * g
  return c, o * np.tanh(c)


def gru_step(p, h, x, variant, b_hn):
  (W_xr, W_xz, W_xn), (W_hr, W_hz, W_hn) = p["input_kernel"], p["recurrent_kernel"]
  b_r, b_z, b_n = p["bias"]
  r = sigmoid(x @ W_xr + b_r + h @ W_hr)
  z = sigmoid(x @ W_xz + b_z + h @ W_hz)
  if variant == "pytorch":
    n = np.tanh(x @ W_xn + b_n + r * (h @ W_hn + b_hn))
  else:
    n = np.tanh(x @ W_xn + b_n + (r * h) @ W_hn)
  return (1.0 - z) * n + z * h


def attention(q, k, v, mask=None, bias=None):
  """softmax(q k^T / sqrt(d) + bias) v per (batch, head), with a loop; q [B, T, N, D], k/v [B, S, N, D]."""
  q, k, v = (np.asarray(a, np.float64) for a in (q, k, v))
  B, T, N, D = q.shape
  S = k.shape[1]
  out = np.zeros((B, T, N, v.shape[-1]))
  weights = np.zeros((B, N, T, S))
  for b in range(B):
    for n in range(N):
      logits = q[b, :, n] @ k[b, :, n].T / np.sqrt(D)
      if bias is not None:
        logits = logits + np.broadcast_to(bias, (B, N, T, S))[b, n]
      allowed = np.ones((T, S), bool) if mask is None else np.broadcast_to(mask, (B, N, T, S))[b, n]
      for t in range(T):
        if allowed[t].any():
          e = np.exp(logits[t] - logits[t][allowed[t]].max()) * allowed[t]
          weights[b, n, t] = e / e.sum()
      out[b, :, n] = weights[b, n] @ v[b, :, n]
  return out, weights


def sinusoid(position, i, d_model):
  """The seeds' formula, one entry: PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(...)."""
  angle = position / 10000 ** (2 * (i // 2) / d_model)
  return np.sin(angle) if i % 2 == 0 else np.cos(angle)


def g(v):
  return np.where(v >= 0, v + 0.5, sigmoid(v))


def min_gru(kernel, bias, x, h0):
  """Feng et al. 2024, minGRU, one step at a time: z = sigma(x W_z), h~ = g(x W_h)."""
  z_pre, h_pre = np.split(x @ kernel + bias, 2, axis=-1)
  h, out = h0, []
  for t in range(x.shape[1]):
    z = sigmoid(z_pre[:, t])
    h = (1 - z) * h + z * g(h_pre[:, t])
    out.append(h)
  return np.stack(out, 1)


def min_lstm(kernel, bias, x, h0):
  """Feng et al. 2024, minLSTM: normalized forget and input gates f' = f / (f + i), i' = i / (f + i)."""
  f_pre, i_pre, h_pre = np.split(x @ kernel + bias, 3, axis=-1)
  h, out = h0, []
  for t in range(x.shape[1]):
    f, i = sigmoid(f_pre[:, t]), sigmoid(i_pre[:, t])
    h = f / (f + i) * h + i / (f + i) * g(h_pre[:, t])
    out.append(h)
  return np.stack(out, 1)
