// The code editor: CodeMirror 6 with JavaScript or TypeScript highlighting.
import { basicSetup } from "codemirror";
import { EditorView, keymap } from "@codemirror/view";
import { Compartment } from "@codemirror/state";
import { indentWithTab } from "@codemirror/commands";
import { javascript } from "@codemirror/lang-javascript";

/**
 * createEditor mounts an editor in parent. nonce is the page's CSP style
 * nonce (for browsers without constructable style sheets); onRun is called on
 * Ctrl/Cmd-Enter and onChange after every edit.
 */
export function createEditor(parent, { nonce, onRun, onChange }) {
  const language = new Compartment();
  const view = new EditorView({
    parent,
    extensions: [
      keymap.of([{ key: "Mod-Enter", run: () => { onRun(); return true; } }, indentWithTab]),
      basicSetup,
      language.of(javascript()),
      EditorView.cspNonce.of(nonce),
      EditorView.contentAttributes.of({ "aria-label": "Guest code" }),
      EditorView.updateListener.of((u) => { if (u.docChanged) onChange(); }),
    ],
  });
  return {
    get code() { return view.state.doc.toString(); },
    set code(text) {
      view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
    },
    setLanguage(lang) {
      view.dispatch({ effects: language.reconfigure(javascript({ typescript: lang === "typescript" })) });
    },
  };
}
