/** Read server-sent events (`data:` lines, events separated by a blank line) from a response body. */
export async function* readSse(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder()
  let buf = ''
  for await (const chunk of body) {
    buf += decoder.decode(chunk, { stream: true }).replace(/\r\n/g, '\n')
    let cut = buf.indexOf('\n\n')
    while (cut >= 0) {
      const block = buf.slice(0, cut)
      buf = buf.slice(cut + 2)
      const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(l.startsWith('data: ') ? 6 : 5))
      if (data.length > 0) yield data.join('\n')
      cut = buf.indexOf('\n\n')
    }
  }
}
