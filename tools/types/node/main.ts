// Imports every entry point of the module, as a user's project would (tools/types/node/tsconfig.json).

import * as m0 from "../../../mod.ts"; // .
import * as m1 from "../../../shared_memory.ts"; // ./shared-memory
import * as m2 from "../../../mutex.ts"; // ./mutex
import * as m3 from "../../../semaphore.ts"; // ./semaphore
import * as m4 from "../../../condition.ts"; // ./condition
import * as m5 from "../../../barrier.ts"; // ./barrier
import * as m6 from "../../../channel.ts"; // ./channel
import * as m7 from "../../../wait_set.ts"; // ./wait-set
import * as m8 from "../../../topic.ts"; // ./topic
import * as m9 from "../../../shareable_list.ts"; // ./shareable-list
import * as m10 from "../../../shared_map.ts"; // ./shared-map
import * as m11 from "../../../scope.ts"; // ./scope
import * as m12 from "../../../errors.ts"; // ./errors
import * as m13 from "../../../ftok.ts"; // ./ftok
import * as m14 from "../../../cli/mod.ts"; // ./cli

console.log(m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13, m14);
