// The child process of docBlocks' typeCheckApart: reads {blocks, tsconfig} as JSON on stdin, prints
// typeCheck's messages as JSON.
import * as fs from "node:fs"
import { type Block, typeCheck } from "./docBlocks.js"

const { blocks, tsconfig } = JSON.parse(fs.readFileSync(0, "utf8")) as {
  readonly blocks: ReadonlyArray<Block>
  readonly tsconfig: string
}
process.stdout.write(JSON.stringify(typeCheck(blocks, tsconfig)))
