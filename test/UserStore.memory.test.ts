import * as MemoryUserStore from "../src/MemoryUserStore.js"
import { userStoreSuite } from "./utils/userStoreSuite.js"

userStoreSuite("memory", { layer: () => MemoryUserStore.layer })
