// Chat templates of instruct models (`chat_template` in tokenizer_config.json, or chat_template.jinja beside it, as
// transformers writes them), rendered with @huggingface/jinja, the implementation transformers.js uses.
import { joinSource, readText, sourceExists, type Source } from '../io/source.js';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface ChatTemplate {
  /** Where the template came from (for messages). */
  source: string;
  /** The conversation as the model was trained to see it; with `addGenerationPrompt` (default true) it ends where the assistant's reply starts. */
  render(messages: ChatMessage[], opts?: { addGenerationPrompt?: boolean }): string;
}

/** tokenizer_config.json gives special tokens as strings or as {content: "..."} objects. */
function tokenText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return undefined;
}

/** The model's chat template, or null when it has none (a base model such as Qwen2-0.5B). */
export async function loadChatTemplate(modelDir: Source): Promise<ChatTemplate | null> {
  const cfgFile = joinSource(modelDir, 'tokenizer_config.json');
  let cfg: Record<string, unknown> = {};
  if (await sourceExists(cfgFile)) {
    try {
      cfg = JSON.parse(await readText(cfgFile));
    } catch (e) {
      throw new Error(`${cfgFile}: invalid JSON: ${(e as Error).message}`);
    }
  }
  let text: string | undefined;
  let source = cfgFile;
  const t = cfg.chat_template;
  if (typeof t === 'string') text = t;
  else if (Array.isArray(t)) {
    // named templates (e.g. "default", "tool_use"): the default one
    const named = t.find((x) => x?.name === 'default') ?? t[0];
    if (typeof named?.template === 'string') text = named.template;
  }
  const jinjaFile = joinSource(modelDir, 'chat_template.jinja');
  if (text === undefined && (await sourceExists(jinjaFile))) {
    text = await readText(jinjaFile);
    source = jinjaFile;
  }
  if (text === undefined) return null;
  const { Template } = await import('@huggingface/jinja');
  let tpl: InstanceType<typeof Template>;
  try {
    tpl = new Template(text);
  } catch (e) {
    throw new Error(`${source}: chat_template does not parse: ${(e as Error).message}`);
  }
  const specials = {
    bos_token: tokenText(cfg.bos_token) ?? '',
    eos_token: tokenText(cfg.eos_token) ?? '',
    pad_token: tokenText(cfg.pad_token) ?? '',
    unk_token: tokenText(cfg.unk_token) ?? '',
  };
  return {
    source,
    render(messages, opts = {}) {
      try {
        return tpl.render({ ...specials, messages, add_generation_prompt: opts.addGenerationPrompt ?? true });
      } catch (e) {
        throw new Error(`${source}: chat_template failed to render: ${(e as Error).message}`);
      }
    },
  };
}
